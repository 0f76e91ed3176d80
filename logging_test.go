package vxnet_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLogKeys: every key passed to a slog call (Debug, Info, Warn, Error,
// With) in the module's code is listed in LOGGING.md (STYLE.md: one fixed
// vocabulary of log keys).
func TestLogKeys(t *testing.T) {
	doc, err := os.ReadFile("LOGGING.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-zA-Z]+)`").FindAllStringSubmatch(string(doc), -1) {
		known[m[1]] = true
	}
	if len(known) < 5 {
		t.Fatalf("LOGGING.md lists %d keys; its table did not parse", len(known))
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			first := 1 // Debug, Info, Warn, Error: message, then key/value pairs
			switch sel.Sel.Name {
			case "Debug", "Info", "Warn", "Error":
				if len(call.Args) == 0 || !isString(call.Args[0]) {
					return true // not a slog call
				}
			case "With":
				first = 0
			default:
				return true
			}
			for i := first; i < len(call.Args); i += 2 {
				lit, ok := call.Args[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					break // an slog.Attr or a computed key: stop checking this call
				}
				key, _ := strconv.Unquote(lit.Value)
				if !known[key] {
					t.Errorf("%s: log key %q is not in LOGGING.md", fset.Position(lit.Pos()), key)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isString(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING
}
