package kvstable

import "testing"

func TestBucket(t *testing.T) {
	for key, want := range map[string]string{
		"block/web/3/h1": "block/web/",
		"host/web/h1":    "host/web/",
		"subnet/":        "subnet/",
		"subnet/web/":    "subnet/web/",
		"x":              "x",
	} {
		if got := bucket(key); got != want {
			t.Errorf("bucket(%q) = %q, want %q", key, got, want)
		}
	}
}
