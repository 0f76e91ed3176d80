package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// measure runs the four tests on one path and returns what they measured.
func (tb *testbed) measure(ctx context.Context, p *benchPath, rep int) (DataplaneSample, error) {
	s := DataplaneSample{Rep: rep, Path: p.key, MachineCPUSeconds: map[string]float64{}}
	if len(p.cpu) > 0 {
		s.CPUSeconds = map[string]float64{}
	}
	tests := []struct {
		key, name string
		run       func(context.Context, *benchPath, *DataplaneSample) (string, error)
	}{
		{TestTCP1, "TCP 1 stream", tb.tcp(1)},
		{TestTCP4, "TCP 4 streams", tb.tcp(4)},
		{TestUDP64, "UDP 64 B", tb.udp64},
		{TestPing, "ping RTT", tb.ping},
	}
	for _, t := range tests {
		fmt.Fprintf(tb.progress, "rep %d/%d %s: %s… ", rep, tb.cfg.Reps, p.label, t.name)
		cpu0, err := cpuSeconds(p.cpu)
		if err != nil {
			fmt.Fprintln(tb.progress, "failed")
			return s, err
		}
		busy0, err := machineBusySeconds()
		if err != nil {
			fmt.Fprintln(tb.progress, "failed")
			return s, err
		}
		result, err := t.run(ctx, p, &s)
		if err != nil {
			fmt.Fprintln(tb.progress, "failed")
			return s, fmt.Errorf("%s: %w", t.name, err)
		}
		busy1, err := machineBusySeconds()
		if err != nil {
			fmt.Fprintln(tb.progress, "failed")
			return s, err
		}
		s.MachineCPUSeconds[t.key] = busy1 - busy0
		if len(p.cpu) > 0 {
			cpu1, err := cpuSeconds(p.cpu)
			if err != nil {
				fmt.Fprintln(tb.progress, "failed")
				return s, err
			}
			s.CPUSeconds[t.key] = cpu1 - cpu0
			result += fmt.Sprintf(" (its processes: CPU %.2f s)", cpu1-cpu0)
		}
		fmt.Fprintln(tb.progress, result)
	}
	return s, nil
}

// iperf runs an iperf3 client across the path with -J and the given
// flags, and retries while the server is still busy with the last test.
func (tb *testbed) iperf(ctx context.Context, p *benchPath, flags ...string) ([]byte, error) {
	argv := append([]string{"ip", "netns", "exec", p.client, "iperf3", "-c", p.addr, "-J",
		"-t", secs(tb.cfg.Time), "--connect-timeout", "5000"}, flags...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, tb.cfg.Time+30*time.Second)
		out, err := run(cctx, argv...)
		cancel()
		if err == nil {
			return []byte(out), nil
		}
		if !iperfBusy([]byte(out)) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		t := time.NewTimer(200 * time.Millisecond) // a retry's spacing; the deadline above bounds the wait
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (tb *testbed) tcp(streams int) func(context.Context, *benchPath, *DataplaneSample) (string, error) {
	return func(ctx context.Context, p *benchPath, s *DataplaneSample) (string, error) {
		out, err := tb.iperf(ctx, p, "-P", strconv.Itoa(streams))
		if err != nil {
			return "", err
		}
		bps, err := parseIperfTCP(out)
		if err != nil {
			return "", err
		}
		gbps := bps / 1e9
		if streams == 1 {
			s.TCP1Gbps = gbps
		} else {
			s.TCP4Gbps = gbps
		}
		return formatValue(gbps, "Gbit/s"), nil
	}
}

// udp64 sends 64-byte datagrams as fast as iperf3 can (-b 0) and counts
// what the receiver got and, from the server namespace's UDP counters,
// what the path delivered to its socket.
func (tb *testbed) udp64(ctx context.Context, p *benchPath, s *DataplaneSample) (string, error) {
	var before udpCounters
	if !p.tunnelUDP {
		var err error
		if before, err = tb.udpCounters(ctx, p.server); err != nil {
			return "", err
		}
	}
	out, err := tb.iperf(ctx, p, "-u", "-l", "64", "-b", "0")
	if err != nil {
		return "", err
	}
	u, err := parseIperfUDP(out)
	if err != nil {
		return "", err
	}
	s.UDP64PPS, s.UDP64SentPPS = u.received, u.sent
	msg := fmt.Sprintf("%s received (%s sent", formatValue(s.UDP64PPS, "pps"), formatValue(s.UDP64SentPPS, "pps"))
	if !p.tunnelUDP {
		after, err := tb.udpCounters(ctx, p.server)
		if err != nil {
			return "", err
		}
		if n, ok := before.delivered(after); ok {
			s.UDP64DeliveredPPS = float64(n) / u.seconds
			msg += ", " + formatValue(s.UDP64DeliveredPPS, "pps") + " delivered to its socket"
		}
	}
	return msg + ")", nil
}

// udpCounters reads namespace ns's UDP counters.
func (tb *testbed) udpCounters(ctx context.Context, ns string) (udpCounters, error) {
	out, err := run(ctx, "ip", "netns", "exec", ns, "cat", "/proc/net/snmp")
	if err != nil {
		return udpCounters{}, err
	}
	c, err := parseSNMPUDP(out)
	if err != nil {
		return udpCounters{}, fmt.Errorf("namespace %s: %w", ns, err)
	}
	return c, nil
}

// ping sends echo requests every PingInterval for Time and takes the
// percentiles of the replies' round trips.
func (tb *testbed) ping(ctx context.Context, p *benchPath, s *DataplaneSample) (string, error) {
	count := max(10, int(tb.cfg.Time/tb.cfg.PingInterval))
	interval := strconv.FormatFloat(tb.cfg.PingInterval.Seconds(), 'f', -1, 64)
	cctx, cancel := context.WithTimeout(ctx, tb.cfg.Time*3+30*time.Second)
	defer cancel()
	// ping exits 1 when a reply is missing; the output says how many.
	out, err := run(cctx, "ip", "netns", "exec", p.client, "ping", "-n", "-i", interval, "-c", strconv.Itoa(count), "-W", "1", p.addr)
	st, perr := parsePing(out)
	if perr != nil {
		if err != nil {
			return "", err
		}
		return "", perr
	}
	s.RTTP50us = float64(percentile(st.rtts, 0.50)) / float64(time.Microsecond)
	s.RTTP99us = float64(percentile(st.rtts, 0.99)) / float64(time.Microsecond)
	s.PingLost = st.transmitted - st.received
	return fmt.Sprintf("p50 %s, p99 %s (%d replies, %d lost)", formatValue(s.RTTP50us, "µs"), formatValue(s.RTTP99us, "µs"),
		st.received, s.PingLost), nil
}
