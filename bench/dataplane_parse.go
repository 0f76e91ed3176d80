package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// iperfResult is the part of `iperf3 -c ... -J` that the benchmark reads.
// For TCP, end.sum_received is the receiver's count, sent back to the
// client at the end of the test. For UDP, iperf3 3.12 writes end.sum (the
// sender's packets with the receiver's losses) and, from 3.10 on, also
// end.sum_sent and end.sum_received.
type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		Sum         *iperfSum `json:"sum"`
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
	} `json:"end"`
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	Bytes         float64 `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Packets       float64 `json:"packets"`
	LostPackets   float64 `json:"lost_packets"`
}

func decodeIperf(out []byte) (iperfResult, error) {
	var r iperfResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("iperf3 -J output: %w", err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r, nil
}

// parseIperfTCP returns the receiver-side throughput of a TCP test, in
// bit/s.
func parseIperfTCP(out []byte) (float64, error) {
	r, err := decodeIperf(out)
	if err != nil {
		return 0, err
	}
	s := r.End.SumReceived
	if s == nil || s.Seconds <= 0 {
		return 0, errors.New("iperf3 -J output: no end.sum_received")
	}
	return s.BitsPerSecond, nil
}

// iperfUDP is what parseIperfUDP read from a UDP test.
type iperfUDP struct {
	received, sent float64 // datagrams per second
	seconds        float64 // the receiver's length of the test
}

// parseIperfUDP returns the datagrams per second the receiver got, and
// the sender sent, in a UDP test: (packets - lost) / seconds.
func parseIperfUDP(out []byte) (iperfUDP, error) {
	r, err := decodeIperf(out)
	if err != nil {
		return iperfUDP{}, err
	}
	recv := r.End.SumReceived
	if recv == nil {
		recv = r.End.Sum
	}
	if recv == nil || recv.Seconds <= 0 || recv.Packets <= 0 {
		return iperfUDP{}, errors.New("iperf3 -J output: no end.sum_received (or end.sum) with packets")
	}
	u := iperfUDP{received: max(0, recv.Packets-recv.LostPackets) / recv.Seconds, sent: recv.Packets / recv.Seconds, seconds: recv.Seconds}
	if s := r.End.SumSent; s != nil && s.Seconds > 0 && s.Packets > 0 {
		u.sent = s.Packets / s.Seconds
	}
	return u, nil
}

// udpCounters are a namespace's UDP counters from /proc/net/snmp.
type udpCounters struct {
	inDatagrams, rcvbufErrors uint64
}

// delivered is how many datagrams reached the namespace's sockets between
// c and later: read by their applications (InDatagrams counts a datagram
// when it is read, so the few left in a buffer at the end are missed) or
// dropped on a full receive buffer (RcvbufErrors). false when a counter
// went back (wrapped, or another namespace's).
func (c udpCounters) delivered(later udpCounters) (uint64, bool) {
	if later.inDatagrams < c.inDatagrams || later.rcvbufErrors < c.rcvbufErrors {
		return 0, false
	}
	return (later.inDatagrams - c.inDatagrams) + (later.rcvbufErrors - c.rcvbufErrors), true
}

// parseSNMPUDP reads the Udp counters of /proc/net/snmp: a line of names
// ("Udp: InDatagrams NoPorts ...") and one of values ("Udp: 12 0 ...").
func parseSNMPUDP(text string) (udpCounters, error) {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		if len(f)-1 != len(names) {
			return udpCounters{}, fmt.Errorf("/proc/net/snmp: Udp has %d names and %d values", len(names), len(f)-1)
		}
		var c udpCounters
		found := 0
		for i, name := range names {
			var dst *uint64
			switch name {
			case "InDatagrams":
				dst = &c.inDatagrams
			case "RcvbufErrors":
				dst = &c.rcvbufErrors
			default:
				continue
			}
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return udpCounters{}, fmt.Errorf("/proc/net/snmp: Udp %s %q: not a count", name, f[i+1])
			}
			*dst = v
			found++
		}
		if found != 2 {
			return udpCounters{}, errors.New("/proc/net/snmp: Udp has no InDatagrams or no RcvbufErrors")
		}
		return c, nil
	}
	return udpCounters{}, errors.New("/proc/net/snmp: no Udp names and values")
}

// pingStats is what parsePing read from iputils ping's output.
type pingStats struct {
	rtts        []time.Duration // per reply, in order of arrival
	transmitted int
	received    int
}

// parsePing reads iputils ping's per-reply lines ("64 bytes from
// 10.0.0.2: icmp_seq=1 ttl=64 time=0.045 ms") and its summary ("500
// packets transmitted, 498 received, ...").
func parsePing(out string) (pingStats, error) {
	var s pingStats
	haveSummary := false
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, " time="); i >= 0 && strings.Contains(line, "bytes from") {
			f := strings.Fields(line[i+len(" time="):])
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return s, fmt.Errorf("ping: reply time %q: %w", f[0], err)
			}
			unit := time.Millisecond
			if len(f) > 1 && f[1] == "s" {
				unit = time.Second
			}
			s.rtts = append(s.rtts, time.Duration(v*float64(unit)))
			continue
		}
		if strings.Contains(line, "packets transmitted") {
			f := strings.Fields(line)
			if len(f) >= 4 {
				s.transmitted, _ = strconv.Atoi(f[0])
				s.received, _ = strconv.Atoi(f[3])
				haveSummary = true
			}
		}
	}
	if !haveSummary {
		return s, errors.New("ping: no \"packets transmitted\" summary in the output")
	}
	if len(s.rtts) == 0 {
		return s, fmt.Errorf("ping: no replies (%d sent)", s.transmitted)
	}
	return s, nil
}

// percentile is the nearest-rank q-quantile (0 < q ≤ 1) of d, which it
// sorts: the smallest value with at least q of the values at or below it.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(len(d)-1, max(0, i))]
}

// Stat sums up the repetitions of one figure.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// summarize returns the median (the mean of the middle two for an even
// count), minimum and maximum of v; NaN values are left out.
func summarize(v []float64) Stat {
	v = slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(v) == 0 {
		return Stat{}
	}
	slices.Sort(v)
	s := Stat{Min: v[0], Max: v[len(v)-1], N: len(v)}
	if n := len(v); n%2 == 1 {
		s.Median = v[n/2]
	} else {
		s.Median = (v[n/2-1] + v[n/2]) / 2
	}
	return s
}

// machine describes where the benchmark ran: OS, kernel, cores, iperf3.
func machine() string {
	desc := runtime.GOOS
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		desc += " " + strings.TrimSpace(string(b))
	}
	desc += fmt.Sprintf(", %d CPUs", runtime.NumCPU())
	if out, err := exec.Command("iperf3", "--version").Output(); err == nil {
		if line, _, _ := strings.Cut(string(out), "\n"); line != "" {
			desc += ", " + strings.TrimSpace(strings.Split(line, "(")[0])
		}
	}
	return desc
}
