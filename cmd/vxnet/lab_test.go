package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/lab"
)

func runLab(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = cmdLab(stdio{stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

func TestCmdLab_usageAndErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	for name, tc := range map[string]struct {
		args     []string
		code     int
		out, err string
	}{
		"no args":         {nil, 2, "", "Commands:"},
		"help":            {[]string{"help"}, 0, "vxnet lab demo", ""},
		"unknown":         {[]string{"frob"}, 2, "", `unknown command "frob"`},
		"up help":         {[]string{"up", "--help"}, 0, "", "-hosts N"},
		"demo help":       {[]string{"demo", "--help"}, 0, "", "dig NAME and NAME.NETWORK"},
		"status help":     {[]string{"status", "--help"}, 0, "", "--format table|json"},
		"down help":       {[]string{"down", "--help"}, 0, "", "not there succeeds"},
		"up zero hosts":   {[]string{"up", "--hosts", "0"}, 2, "", "--hosts 0: want 1 to 200"},
		"demo many hosts": {[]string{"demo", "--hosts", "201"}, 2, "", "--hosts 201"},
		"up stray":        {[]string{"up", "extra"}, 2, "", `unexpected argument "extra"`},
		"up bad id":       {[]string{"up", "--id", "Bad_ID"}, 2, "", `lab id "Bad_ID"`},
		"down bad id":     {[]string{"down", "--id", "a/b"}, 1, "", `lab id "a/b"`},
		"status no lab":   {[]string{"status", "--id", "nolab", "--dir", dir}, 1, "", "lab is not up"},
		"status format":   {[]string{"status", "--format", "xml"}, 2, "", `--format "xml"`},
		"echo no mode":    {[]string{"tcp-echo"}, 2, "", "exactly one of --listen"},
		"chaos help":      {[]string{"chaos", "--help"}, 0, "", "networks-survive"},
		"chaos faults":    {[]string{"chaos", "--faults", "kill,flood"}, 2, "", `fault "flood"`},
		"chaos one host":  {[]string{"chaos", "--hosts", "1", "--dir", dir}, 1, "", "at least 2"},
		"chaos faulty":    {[]string{"chaos", "--hosts", "3", "--max-faulty", "3", "--dir", dir}, 1, "", "max faulty 3: want 1 to 2"},
		"restart help":    {[]string{"restart", "--help"}, 0, "", "--lose-state"},
		"restart no host": {[]string{"restart", "--kill"}, 2, "", "exactly one HOST"},
		"restart two":     {[]string{"restart", "h1", "--kill", "h2"}, 2, "", "exactly one HOST"},
		"restart no lab":  {[]string{"restart", "h1", "--id", "nolab", "--dir", dir}, 1, "", "lab is not up"},
		"echo both":       {[]string{"tcp-echo", "--listen", ":1", "--connect", "x:1"}, 2, "", "exactly one of"},
		"echo refused":    {[]string{"tcp-echo", "--connect", "127.0.0.1:1", "--timeout", "1s"}, 1, "", "vxnet lab tcp-echo:"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runLab(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

func TestCmdLab_tcpEchoConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go lab.ServeEcho(ctx, ln)
	code, out, errOut := runLab("tcp-echo", "--connect", ln.Addr().String())
	if code != 0 || !strings.HasPrefix(out, "echo from "+ln.Addr().String()) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
