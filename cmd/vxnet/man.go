package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// manPages are the commands whose --help the manual page carries, in its
// order.
var manPages = [][]string{
	{"agent"}, {"install"}, {"cluster"}, {"cluster", "init"}, {"cluster", "join"}, {"cluster", "token"},
	{"network"}, {"endpoint"}, {"service"}, {"run"}, {"store"}, {"stats"}, {"cni"}, {"cni", "install"}, {"lab"}, {"dataplane"}, {"bench"}, {"version"},
}

// cmdMan prints vxnet(1), the manual page: the commands' own --help
// texts, so the two never disagree. make dist installs it.
func cmdMan(std stdio, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(std.stderr, "Usage: vxnet help --man > vxnet.1   (the manual page, troff)")
		return 2
	}
	var b bytes.Buffer
	date := time.Now()
	if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		date = time.Unix(sec, 0) // reproducible builds
	}
	fmt.Fprintf(&b, ".TH VXNET 1 %q \"vxnet %s\" \"vxnet manual\"\n", date.UTC().Format("2006-01-02"), version)
	b.WriteString(".SH NAME\nvxnet \\- a userspace VXLAN container network for many hosts\n")
	b.WriteString(".SH SYNOPSIS\n.B vxnet\n[\\-\\-socket PATH] COMMAND [FLAGS]\n")
	b.WriteString(".SH DESCRIPTION\n")
	preformatted(&b, usage)
	b.WriteString(".SH COMMANDS\n")
	for _, cmd := range manPages {
		var out bytes.Buffer
		run(stdio{stdout: &out, stderr: &out}, append(append([]string{}, cmd...), "--help"))
		fmt.Fprintf(&b, ".SS vxnet %s\n", strings.Join(cmd, " "))
		preformatted(&b, out.String())
	}
	b.WriteString(".SH FILES\n.TP\n/etc/vxnet/config.json\nthe agent's settings (keys are its flag names)\n.TP\n/etc/vxnet/gossip.key\nthe cluster's gossip keys, mode 0600\n.TP\n/var/lib/vxnet\nthe host's state\n.TP\n/run/vxnet/vxnet.sock\nthe agent's API\n")
	b.WriteString(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1)\n")
	std.stdout.Write(b.Bytes())
	return 0
}

// preformatted writes text as it is: no filling, troff's special
// characters escaped.
func preformatted(b *bytes.Buffer, text string) {
	b.WriteString(".nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		line = strings.ReplaceAll(line, `\`, `\e`)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(".fi\n")
}
