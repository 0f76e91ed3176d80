package tables

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/vxnet/vxnet/internal/names"
)

// Forgotten is a cluster table: the hosts forgotten by `vxnet cluster
// forget`, a row per host (key: its name). A row names the run of the
// host that was down (Run: the epoch its writes carried); every agent
// hands the rows to its store, which drops that run's rows at once, as
// the reap would after 24 h, and counts the host's earlier claims as made
// at the forget (see kvs.ForgetRule). A later forget of the same host
// overwrites the row. Rows stay: they are what tells a host that comes
// back after being forgotten, and every host that restarts, what
// happened.
const Forgotten = "forgotten"

// ForgottenHost is a row of Forgotten.
type ForgottenHost struct {
	Host string    // the key
	Run  uint64    // the run forgotten
	By   string    // the host where it was forgotten
	At   time.Time // when
}

type forgottenWire struct {
	V   int       `json:"v,omitempty"`
	Run string    `json:"run"` // decimal: a JSON number is not exact past 2^53 in every reader
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

// Encode is f's wire form.
func (f ForgottenHost) Encode() []byte {
	b, _ := json.Marshal(forgottenWire{V: 1, Run: strconv.FormatUint(f.Run, 10), By: f.By, At: f.At}) // plain fields: cannot fail
	return b
}

// DecodeForgottenHost reads the row at key of Forgotten.
func DecodeForgottenHost(key string, value []byte) (ForgottenHost, error) {
	var w forgottenWire
	if err := json.Unmarshal(value, &w); err != nil {
		return ForgottenHost{}, &RowError{Table: Forgotten, Key: key, Reason: "not a forgotten host row: " + err.Error()}
	}
	if err := checkVersion(Forgotten, key, w.V); err != nil {
		return ForgottenHost{}, err
	}
	if err := names.Host(key); err != nil {
		return ForgottenHost{}, &RowError{Forgotten, key, "key", key, err.Error()}
	}
	run, err := strconv.ParseUint(w.Run, 10, 64)
	if err != nil || run == 0 {
		return ForgottenHost{}, &RowError{Forgotten, key, "run", w.Run, "want the host's run, a positive decimal number"}
	}
	if err := names.Host(w.By); err != nil {
		return ForgottenHost{}, &RowError{Forgotten, key, "by", w.By, err.Error()}
	}
	return ForgottenHost{Host: key, Run: run, By: w.By, At: w.At}, nil
}
