package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
)

// TestPrintStats_everyCounter: the table shows every counter of api.Stats
// (a counter added to the data plane must be added here too, or this
// fails), and every field has its JSON name.
func TestPrintStats_everyCounter(t *testing.T) {
	var s api.Stats
	v := reflect.ValueOf(&s).Elem()
	want := map[string]string{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Tag.Get("json") == "" {
			t.Errorf("api.Stats.%s has no json name", f.Name)
		}
		if f.Type.Kind() == reflect.Uint64 {
			v.Field(i).SetUint(uint64(1000003 + i*7919))
			want[f.Name] = fmt.Sprint(v.Field(i).Uint())
		}
	}
	s.Drops = map[string]uint64{"seal_replay": 424242}
	var b bytes.Buffer
	printStats(&b, s)
	for name, value := range want {
		if !strings.Contains(b.String(), " "+value+"\n") {
			t.Errorf("counter %s (%s) not in the table:\n%s", name, value, b.String())
		}
	}
	if !strings.Contains(b.String(), "drop seal_replay") || !strings.Contains(b.String(), "424242") {
		t.Errorf("drops not in the table:\n%s", b.String())
	}
}
