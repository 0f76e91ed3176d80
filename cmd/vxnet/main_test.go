package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(stdio{stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

func TestRun_usageAndErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"vtep": "198.18.0.1", "networks": [{"vni": 0}]}`), 0o600)
	for name, tc := range map[string]struct {
		args     []string
		code     int
		out, err string
	}{
		"no args":           {nil, 2, "", "Commands:"},
		"help":              {[]string{"help"}, 0, "dataplane", ""},
		"unknown":           {[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		"version":           {[]string{"version"}, 0, "vxnet dev", ""},
		"dataplane help":    {[]string{"dataplane", "--help"}, 0, "", `"vtep": "198.18.0.1"`},
		"help dataplane":    {[]string{"help", "dataplane"}, 0, "", "--config FILE"},
		"no config":         {[]string{"dataplane"}, 2, "", "--config FILE is required"},
		"missing file":      {[]string{"dataplane", "--config", filepath.Join(dir, "none.json")}, 1, "", "none.json"},
		"bad config":        {[]string{"dataplane", "--config", bad}, 1, "", `networks[0].vni: "0"`},
		"bad level":         {[]string{"dataplane", "--config", bad, "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		"stray arg":         {[]string{"dataplane", "--config", bad, "extra"}, 2, "", `unexpected argument "extra"`},
		"stats no socket":   {[]string{"dataplane", "stats"}, 2, "", "--stats-socket PATH is required"},
		"stats bad format":  {[]string{"dataplane", "stats", "--stats-socket", "x", "--format", "xml"}, 2, "", `--format "xml"`},
		"stats not running": {[]string{"dataplane", "stats", "--stats-socket", filepath.Join(dir, "none.sock")}, 1, "", "is 'vxnet dataplane --stats-socket"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}
