package udp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty = valid
		want    Config // checked when valid
	}{
		{name: "zero is defaults", cfg: Config{}, want: DefaultConfig()},
		{name: "default config", cfg: DefaultConfig(), want: DefaultConfig()},
		{name: "batch too big", cfg: Config{BatchSize: 5000}, wantErr: "udp: config BatchSize 5000 out of range 1-1024"},
		{name: "batch negative", cfg: Config{BatchSize: -1}, wantErr: "BatchSize -1 out of range"},
		{name: "batch max", cfg: Config{BatchSize: 1024}, want: Config{Port: 4789, SourcePorts: DefaultSourcePorts, BatchSize: 1024, SocketBuffer: 4 << 20}},
		{name: "buffer negative", cfg: Config{SocketBuffer: -1}, wantErr: "SocketBuffer -1 out of range"},
		{name: "buffer huge", cfg: Config{SocketBuffer: MaxSocketBuffer + 1}, wantErr: "SocketBuffer 1073741825 out of range"},
		{name: "too many source ports", cfg: Config{SourcePorts: 5000}, wantErr: "SourcePorts 5000 out of range"},
		{name: "no source ports", cfg: Config{SourcePorts: -1}, want: Config{Port: 4789, SourcePorts: 0, BatchSize: 64, SocketBuffer: 4 << 20}},
		{name: "explicit port kept", cfg: Config{Port: 8472, BatchSize: 1}, want: Config{Port: 8472, SourcePorts: DefaultSourcePorts, BatchSize: 1, SocketBuffer: 4 << 20}},
		{name: "mapped addr unmapped", cfg: Config{Addr: netip.MustParseAddr("::ffff:10.0.0.1")},
			want: Config{Addr: netip.MustParseAddr("10.0.0.1"), Port: 4789, SourcePorts: DefaultSourcePorts, BatchSize: 64, SocketBuffer: 4 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalize(%+v) error = %v, want containing %q", tt.cfg, err, tt.wantErr)
				}
				// Listen must reject it too, before opening sockets.
				if c, err := Listen(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					if c != nil {
						c.Close()
					}
					t.Fatalf("Listen(%+v) error = %v, want containing %q", tt.cfg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalize(%+v): %v", tt.cfg, err)
			}
			if got != tt.want {
				t.Fatalf("normalize(%+v) = %+v, want %+v", tt.cfg, got, tt.want)
			}
		})
	}
}
