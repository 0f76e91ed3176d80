package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// decodeStrict decodes body, one JSON object, into v (a pointer to one of
// the API's request structs), refusing what encoding/json lets through:
// a field name whose case differs from the documented one ("Name" for
// "name"; encoding/json matches names without regard to case), a key given
// twice in one object (encoding/json keeps the last), unknown fields, and
// anything after the object. The error is a bad request naming the field.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return badBody("", "empty request body: want a JSON object")
	}
	if err != nil {
		return badBody("", "bad request body: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badBody("", "bad request body: want a JSON object, not %s", tokenKind(tok))
	}
	if err := checkObject(dec, reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return badBody("", "bad request body: more than one JSON value")
	}
	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		field := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		}
		return badBody(field, "bad request body: %v", err)
	}
	return nil
}

func badBody(field, format string, args ...any) *Error {
	return &Error{Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// checkObject checks the members of the object whose '{' dec just read,
// and reads its '}'. t is the Go type it decodes into: for a struct, each
// key must be one of its JSON field names, exactly; for anything else
// (maps, interfaces), keys are data and only duplicates are refused.
func checkObject(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badBody(path, "bad request body: %v", err)
		}
		key, _ := tok.(string)
		at := join(path, key)
		if seen[key] {
			return badBody(at, "bad request body: %s is given twice", describe(path, key))
		}
		seen[key] = true
		var elem reflect.Type
		switch {
		case fields != nil:
			ft, ok := fields[key]
			if !ok {
				return unknownField(path, key, fields)
			}
			elem = ft
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		if err := checkValue(dec, elem, at); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return badBody(path, "bad request body: %v", err)
	}
	return nil
}

// checkValue checks the next value, of Go type t (nil: unknown).
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return badBody(path, "bad request body: %v", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar: its type is checked when decoding
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch d {
	case '{':
		return checkObject(dec, t, path)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return badBody(path, "bad request body: %v", err)
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// unknownField is the error for key, which is no field of the object at
// path: a documented name in another case, or none at all.
func unknownField(path, key string, fields map[string]reflect.Type) error {
	at := join(path, key)
	for name := range fields {
		if strings.EqualFold(name, key) {
			return badBody(at, "bad request body: unknown field %q: the field is %q (field names are case-sensitive)", at, join(path, name))
		}
	}
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	sort.Strings(known)
	return badBody(at, "bad request body: unknown field %q (known: %s)", at, strings.Join(known, ", "))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(path, key string) string {
	if path == "" {
		return fmt.Sprintf("field %q", key)
	}
	return fmt.Sprintf("key %q of %s", key, path)
}

func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
