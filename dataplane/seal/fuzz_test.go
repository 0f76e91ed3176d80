package seal

import (
	"bytes"
	"testing"
)

// FuzzOpen: whatever arrives, Open never panics and never returns a
// frame for a datagram the key did not seal.
func FuzzOpen(f *testing.F) {
	a, b := pairKeys(f, AES256GCM)
	var s Scratch
	good := seal(f, a.Send, &s, datagram(4097, []byte("a frame that was sealed")))
	f.Add(good)
	f.Add(good[:HeaderLen+TagLen])
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, d []byte) {
		var s Scratch
		in := append([]byte(nil), d...)
		h, err := ParseHeader(in)
		if err != nil {
			return
		}
		frame, err := b.Recv.Open(&s, in, h)
		if err != nil {
			return
		}
		// Only the datagram sealed above opens, once.
		if !bytes.Equal(d, good) || string(frame) != "a frame that was sealed" {
			t.Fatalf("opened a datagram never sealed: %x", d)
		}
		b.Recv.window = Window{} // the sealed one may open again next time
	})
}
