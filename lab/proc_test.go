package lab

import "testing"

func TestParseProcStat(t *testing.T) {
	rest := " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n"
	for name, tc := range map[string]struct {
		in    string
		state byte
		start uint64
		ok    bool
	}{
		"plain":          {"123 (vxnet) S" + rest, 'S', 424242, true},
		"zombie":         {"123 (vxnet) Z" + rest, 'Z', 424242, true},
		"spaces, parens": {"123 (a) b (c)) R" + rest, 'R', 424242, true},
		"no comm":        {"123 vxnet S" + rest, 0, 0, false},
		"short":          {"123 (vxnet) S 1 2 3", 0, 0, false},
		"bad start":      {"123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20 21", 0, 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := parseProcStat([]byte(tc.in))
			if (err == nil) != tc.ok || (tc.ok && (st.State != tc.state || st.Start != tc.start)) {
				t.Errorf("parseProcStat = %+v, %v; want state %c start %d ok=%v", st, err, tc.state, tc.start, tc.ok)
			}
		})
	}
}
