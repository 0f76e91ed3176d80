package lab

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// recorder is a runner that records commands and answers from a table.
type recorder struct {
	cmds   [][]string
	answer func(argv []string) (string, error)
}

func (r *recorder) run(_ context.Context, argv ...string) (string, error) {
	r.cmds = append(r.cmds, argv)
	if r.answer != nil {
		return r.answer(argv)
	}
	return "", nil
}

func TestUnderlayCommands(t *testing.T) {
	s := newState(Config{ID: "u", Hosts: 2, Dir: "/run/vxnet-lab/u"}.withDefaults())
	a1, a2, out := HostAddr(s.Subnet, 1).String(), HostAddr(s.Subnet, 2).String(), OutsideAddr(s.Subnet).String()
	var got []string
	for _, c := range underlayCommands(s) {
		got = append(got, strings.Join(c, " "))
	}
	want := []string{
		"ip netns add u-bridge",
		"ip -n u-bridge link set lo up",
		"ip -n u-bridge link add br0 type bridge",
		"ip -n u-bridge link set br0 up",
		"ip netns add u-h1",
		"ip -n u-h1 link set lo up",
		"ip -n u-bridge link add h1 type veth peer name u0 netns u-h1",
		"ip -n u-bridge link set h1 master br0 up",
		"ip -n u-h1 addr add " + a1 + "/24 dev u0",
		"ip -n u-h1 link set u0 up",
		"ip netns add u-h2",
		"ip -n u-h2 link set lo up",
		"ip -n u-bridge link add h2 type veth peer name u0 netns u-h2",
		"ip -n u-bridge link set h2 master br0 up",
		"ip -n u-h2 addr add " + a2 + "/24 dev u0",
		"ip -n u-h2 link set u0 up",
		"ip netns add u-outside",
		"ip netns exec u-outside sh -c echo 0 > /proc/sys/net/ipv4/icmp_ratelimit",
		"ip -n u-outside link set lo up",
		"ip -n u-bridge link add out type veth peer name eth0 netns u-outside",
		"ip -n u-bridge link set out master br0 up",
		"ip -n u-outside addr add " + out + "/24 dev eth0",
		"ip -n u-outside link set eth0 up",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The rule that keeps the machine's interfaces out of it: every
	// command that touches a link names a lab namespace.
	for _, c := range got {
		if strings.Contains(c, " link ") || strings.Contains(c, " addr ") {
			if !strings.HasPrefix(c, "ip -n u-") {
				t.Errorf("%q runs outside the lab's namespaces", c)
			}
		}
	}
}

func TestBuildUnderlay_stopsAtFirstFailure(t *testing.T) {
	s := newState(Config{ID: "u", Hosts: 2, Dir: "/run/vxnet-lab/u"}.withDefaults())
	r := &recorder{answer: func(argv []string) (string, error) {
		if slices.Contains(argv, "veth") {
			return "RTNETLINK answers: File exists", &CmdError{Argv: argv, Output: "RTNETLINK answers: File exists", Err: errors.New("exit status 2")}
		}
		return "", nil
	}}
	err := buildUnderlay(t.Context(), r, s)
	if err == nil || !strings.Contains(err.Error(), "File exists") {
		t.Errorf("err = %v", err)
	}
	if len(r.cmds) != 7 {
		t.Errorf("%d commands run, want 7 (up to the first veth)", len(r.cmds))
	}
}

func TestLabNamespaces_parsesListAndFilters(t *testing.T) {
	r := &recorder{answer: func([]string) (string, error) {
		return "vxlab-h2-c1 (id: 7)\nvxlab-h1\nsomeone-else\nvxlab-2-h1 (id: 3)\nvxlab-outside (id: 4)\nvxlab-bridge (id: 0)\n\n", nil
	}}
	got, err := labNamespaces(t.Context(), r, "vxlab")
	if err != nil || !slices.Equal(got, []string{"vxlab-h2-c1", "vxlab-h1", "vxlab-outside", "vxlab-bridge"}) {
		t.Errorf("labNamespaces = %v, %v", got, err)
	}
}

func TestDownOrder(t *testing.T) {
	got := downOrder([]string{"x-h1", "x-h2", "x-outside", "x-bridge"}, []string{"x-bridge", "x-h1-c1", "x-h3", "x-h2-c2"})
	want := []string{"x-h1-c1", "x-h2-c2", "x-h1", "x-h2", "x-outside", "x-h3", "x-bridge"}
	if !slices.Equal(got, want) {
		t.Errorf("downOrder = %v, want %v", got, want)
	}
	if got := downOrder(nil, nil); len(got) != 0 {
		t.Errorf("downOrder(nil, nil) = %v", got)
	}
}

// TestDown_leavesContainerNamespacesItDidNotMake: with its state, Down
// deletes the lab's hosts and the containers it recorded, and leaves a
// namespace someone made by hand under a container's name; without a
// state, every namespace of the lab's pattern goes.
func TestDown_leavesContainerNamespacesItDidNotMake(t *testing.T) {
	list := "tdn-h1-c1\ntdn-h1-c2 (id: 3)\ntdn-h1\ntdn-bridge\nother-h1-c1\n"
	var out strings.Builder
	deleted := func(withState bool) []string {
		r := &recorder{answer: func(argv []string) (string, error) {
			if slices.Equal(argv, []string{"ip", "netns", "list"}) {
				return list, nil
			}
			return "", nil
		}}
		out.Reset()
		cfg := Config{ID: "tdn", Hosts: 1, Dir: t.TempDir(), Out: &out}.withDefaults()
		l := &Lab{cfg: cfg, run: r}
		if withState {
			l.st = newState(cfg)
			l.st.Containers = []ContainerState{{Name: "h1c1", Host: "h1", Netns: "tdn-h1-c1"}}
		}
		if err := l.Down(t.Context()); err != nil {
			t.Fatal(err)
		}
		var del []string
		for _, c := range r.cmds {
			if len(c) == 4 && c[1] == "netns" && c[2] == "del" {
				del = append(del, c[3])
			}
		}
		return del
	}
	if got, want := deleted(true), []string{"tdn-h1-c1", "tdn-h1", "tdn-bridge"}; !slices.Equal(got, want) {
		t.Errorf("with its state, Down deleted %v, want %v", got, want)
	}
	if !strings.Contains(out.String(), "left 1 namespace(s) named like its containers but not made by it (ip netns del removes them): tdn-h1-c2") {
		t.Errorf("Down does not name the namespace it left:\n%s", out.String())
	}
	if got, want := deleted(false), []string{"tdn-h1-c1", "tdn-h1-c2", "tdn-h1", "tdn-bridge"}; !slices.Equal(got, want) {
		t.Errorf("without a state, Down deleted %v, want %v", got, want)
	}
}
