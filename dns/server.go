package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
)

// ContainerAddr is where a container's resolver finds the server, as with
// Docker's embedded DNS.
var ContainerAddr = netip.MustParseAddrPort("127.0.0.11:53")

// Config configures a Server. DefaultConfig fills every field.
type Config struct {
	// Upstreams are the servers names vxnet does not own are forwarded
	// to, asked in order; at most MaxUpstreams. None: unknown names get
	// SERVFAIL. Default: the nameservers of /etc/resolv.conf (HostUpstreams).
	Upstreams []netip.AddrPort
	// UpstreamTimeout is the time each upstream gets to answer. Default 1 s.
	UpstreamTimeout time.Duration
	// MaxForwards caps the queries waiting on upstreams at once, for the
	// whole server; past it, queries get SERVFAIL at once. Default 4096.
	MaxForwards int
	// UDPSize is the EDNS0 payload size advertised, and the largest UDP
	// response sent whatever the client offers, in bytes. Default 1232.
	UDPSize uint16
	// TCPIdleTimeout closes a TCP connection that sends no query for this
	// long after an answer. Default 10 s.
	TCPIdleTimeout time.Duration
	// TCPReadTimeout closes a TCP connection that sends no query for this
	// long after it opens. Default 2 s.
	TCPReadTimeout time.Duration
	// MaxTCPConns caps the TCP connections open at once over every
	// listener; past it, a new connection is closed at once and counted
	// (HandlerStats.TCPRefused). Default 512.
	MaxTCPConns int
	// MaxTCPConnsPerClient caps the TCP connections one client address
	// holds open to one listener, likewise. Default 16.
	MaxTCPConnsPerClient int
	// Logger receives start, stop and error events; nil discards them.
	Logger *slog.Logger
}

// Defaults of the TCP caps (Config.MaxTCPConns, MaxTCPConnsPerClient):
// well under a process's usual descriptor limit, and far over what
// resolvers use (one connection per query, for truncated answers).
const (
	DefaultMaxTCPConns          = 512
	DefaultMaxTCPConnsPerClient = 16
	defaultTCPReadTimeout       = 2 * time.Second
)

// DefaultConfig returns the defaults, with the host's upstream servers.
func DefaultConfig() Config {
	ups, _ := HostUpstreams()
	return Config{
		Upstreams:            ups,
		UpstreamTimeout:      defaultUpstreamTimeout,
		MaxForwards:          4096,
		UDPSize:              1232,
		TCPIdleTimeout:       10 * time.Second,
		TCPReadTimeout:       defaultTCPReadTimeout,
		MaxTCPConns:          DefaultMaxTCPConns,
		MaxTCPConnsPerClient: DefaultMaxTCPConnsPerClient,
	}
}

// Server answers DNS queries from a Records snapshot, on any number of
// listeners, each bound to a View. Safe for concurrent use.
//
//	New ──► SetRecords (any time, any number) ──► Serve/Handler ──► Close
type Server struct {
	cfg Config
	log *slog.Logger
	fwd *forwarder
	rec atomic.Pointer[recordsBox]

	mu        sync.Mutex
	handlers  map[*Handler]struct{}
	listeners map[*Listener]struct{}
	gone      HandlerStats // counters of closed listeners
	closed    bool

	tcp tcpLimit // open TCP connections (limit.go)

	// catchingUp: the records may lack names the cluster has (an agent
	// that just restarted): a miss gets no answer (HandlerStats.Held).
	catchingUp atomic.Bool
}

// SetCatchingUp says whether the records may still lack names that exist:
// while they may, a query for a name not found is left unanswered rather
// than answered NXDOMAIN, which the client would cache (it asks again
// after its timeout); one that is forwarded gets the upstream's answer
// only if that is not a denial (NXDOMAIN, or no record of the type).
func (s *Server) SetCatchingUp(on bool) { s.catchingUp.Store(on) }

type recordsBox struct{ r Records }

// New validates cfg and returns a server with no records: until the first
// SetRecords, every name gets SERVFAIL.
func New(cfg Config) (*Server, error) {
	d := DefaultConfig
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = defaultUpstreamTimeout
	}
	if cfg.MaxForwards == 0 {
		cfg.MaxForwards = d().MaxForwards
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = 1232
	}
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.TCPReadTimeout == 0 {
		cfg.TCPReadTimeout = defaultTCPReadTimeout
	}
	if cfg.MaxTCPConns == 0 {
		cfg.MaxTCPConns = DefaultMaxTCPConns
	}
	if cfg.MaxTCPConnsPerClient == 0 {
		cfg.MaxTCPConnsPerClient = DefaultMaxTCPConnsPerClient
	}
	switch {
	case len(cfg.Upstreams) > MaxUpstreams:
		return nil, &FieldError{Field: "upstreams", Value: fmt.Sprint(cfg.Upstreams), Err: ErrTooManyUpstreams}
	case cfg.UpstreamTimeout < 0:
		return nil, &FieldError{Field: "upstreamTimeout", Value: cfg.UpstreamTimeout.String(), Err: errNegative}
	case cfg.MaxForwards < 0:
		return nil, &FieldError{Field: "maxForwards", Value: itoa(cfg.MaxForwards), Err: errNegative}
	case cfg.TCPIdleTimeout < 0:
		return nil, &FieldError{Field: "tcpIdleTimeout", Value: cfg.TCPIdleTimeout.String(), Err: errNegative}
	case cfg.TCPReadTimeout < 0:
		return nil, &FieldError{Field: "tcpReadTimeout", Value: cfg.TCPReadTimeout.String(), Err: errNegative}
	case cfg.MaxTCPConns < 0:
		return nil, &FieldError{Field: "maxTCPConns", Value: itoa(cfg.MaxTCPConns), Err: errNegative}
	case cfg.MaxTCPConnsPerClient < 0:
		return nil, &FieldError{Field: "maxTCPConnsPerClient", Value: itoa(cfg.MaxTCPConnsPerClient), Err: errNegative}
	case cfg.UDPSize < minUDPSize:
		return nil, &FieldError{Field: "udpSize", Value: itoa(int(cfg.UDPSize)), Err: errUDPSize}
	}
	for i, u := range cfg.Upstreams {
		if !u.IsValid() || u.Port() == 0 {
			return nil, &FieldError{Field: "upstreams[" + itoa(i) + "]", Value: u.String(), Err: errAddrPort}
		}
	}
	cfg.Upstreams = append([]netip.AddrPort(nil), cfg.Upstreams...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, log: log.With("component", "dns"), fwd: newForwarder(&cfg),
		handlers: map[*Handler]struct{}{}, listeners: map[*Listener]struct{}{},
	}
	s.fwd.catchingUp = &s.catchingUp
	return s, nil
}

func (s *Server) records() Records {
	if b := s.rec.Load(); b != nil {
		return b.r
	}
	return nil
}

// SetRecords publishes a new snapshot; queries already running finish on
// the old one. r must not change afterwards.
func (s *Server) SetRecords(r Records) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.Store(&recordsBox{r})
	for h := range s.handlers {
		h.b.Store(bind(r, h.view, len(s.cfg.Upstreams) > 0))
	}
}

// Handler returns a handler for view, for a transport of the caller's
// (and for tests). It stays registered until the server closes.
func (s *Server) Handler(v View) *Handler {
	h := &Handler{srv: s}
	s.mu.Lock()
	s.handlers[h] = struct{}{}
	s.mu.Unlock()
	h.SetView(v)
	return h
}

// Stats sums the counters of every handler the server has had.
func (s *Server) Stats() HandlerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.gone
	for h := range s.handlers {
		st := h.Stats()
		t.add(&st)
	}
	return t
}

// Conns are the sockets a Listener serves: UDP and TCP on one address.
type Conns struct {
	UDP *net.UDPConn
	TCP *net.TCPListener
}

// Close closes both sockets.
func (c Conns) Close() error {
	var err error
	if c.UDP != nil {
		err = c.UDP.Close()
	}
	if c.TCP != nil {
		if e := c.TCP.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Listen opens UDP and TCP sockets on addr in the caller's namespace.
// Port 0 picks a free UDP port and uses the same for TCP (another, if
// that one is taken for TCP).
func Listen(addr netip.AddrPort) (Conns, error) {
	for tries := 1; ; tries++ {
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return Conns{}, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		port := u.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), port)))
		if err == nil {
			return Conns{UDP: u, TCP: t}, nil
		}
		u.Close()
		if addr.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) || tries == 10 {
			return Conns{}, fmt.Errorf("dns: listen tcp %s: %w", addr, err)
		}
		// Port 0: the UDP port the kernel picked is taken for TCP by
		// someone else; pick another.
	}
}

// Listener serves one Conns for one view.
//
//	Serve ──► running (SetView any time) ──► Close ──► closed
type Listener struct {
	*Handler
	conns Conns
	addr  netip.AddrPort
	udp   udpSocket
	tcp   *mdns.Server
	wg    sync.WaitGroup
	once  sync.Once
}

// Serve answers on c for view v until the listener or the server closes;
// the listener owns c from here on (on Linux it closes c.UDP at once and
// serves from a duplicate of its descriptor, see udpSocket).
func (s *Server) Serve(c Conns, v View) (*Listener, error) {
	if c.UDP == nil || c.TCP == nil {
		return nil, &FieldError{Field: "conns", Value: fmt.Sprint(c), Err: errNoSocket}
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		c.Close()
		return nil, ErrClosed
	}
	l := &Listener{conns: c, addr: c.UDP.LocalAddr().(*net.UDPAddr).AddrPort()}
	if err := l.udp.take(c.UDP); err != nil {
		c.Close()
		return nil, err
	}
	h := s.Handler(v)
	l.Handler = h
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.udp.close()
		c.Close()
		return nil, ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()

	started := make(chan struct{})
	l.tcp = &mdns.Server{
		Listener: &limitListener{Listener: c.TCP, l: l}, Handler: h, ReadTimeout: s.cfg.TCPReadTimeout,
		IdleTimeout:       func() time.Duration { return s.cfg.TCPIdleTimeout },
		NotifyStartedFunc: func() { close(started) },
	}
	l.wg.Add(2)
	go l.routineServeTCP()
	go l.routineServeUDP()
	<-started // miekg's Shutdown fails before the server runs
	return l, nil
}

// Addr is the UDP (and TCP) address the listener answers on.
func (l *Listener) Addr() netip.AddrPort {
	return l.addr
}

func (l *Listener) routineServeTCP() {
	defer l.wg.Done()
	log := l.srv.log.With("listenAddr", l.conns.TCP.Addr().String())
	log.Debug("tcp serving")
	if err := l.tcp.ActivateAndServe(); err != nil {
		log.Warn("tcp stopped", "error", err)
		return
	}
	log.Debug("tcp stopped")
}

// Close stops serving and closes the sockets. Idempotent.
func (l *Listener) Close() error {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.tcp.ShutdownContext(ctx)
		l.udp.shutdown(l.conns.UDP)
		l.wg.Wait()
		l.udp.close()
		s := l.srv
		s.mu.Lock()
		delete(s.listeners, l)
		delete(s.handlers, l.Handler)
		st := l.Stats()
		s.gone.add(&st)
		s.mu.Unlock()
	})
	return nil
}

// Close closes every listener. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ls := make([]*Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	return nil
}
