package dns

import (
	"net"
	"net/netip"
	"sync"
)

// TCP connections are capped so that no client can hold enough of them to
// run the process out of file descriptors: per client address on each
// listener (Config.MaxTCPConnsPerClient) and over the whole server
// (Config.MaxTCPConns). A connection past either cap is closed as soon as
// it is accepted and counted (HandlerStats.TCPRefused); one that sends no
// query within Config.TCPReadTimeout, or none for Config.TCPIdleTimeout
// after an answer, is closed too.

// tcpLimit counts a server's open TCP connections.
type tcpLimit struct {
	mu        sync.Mutex
	open      int                              // over every listener
	perClient map[*Listener]map[netip.Addr]int // by listener, then client address
}

// limitListener is a listener's TCP socket with the caps applied at
// Accept.
type limitListener struct {
	net.Listener
	l *Listener
}

// Accept returns the next connection within the caps, closing the ones
// past them.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ll.l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c in, or closes it and counts it refused.
func (l *Listener) admit(c net.Conn) net.Conn {
	var client netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = a.AddrPort().Addr().Unmap()
	}
	s := l.srv
	lim := &s.tcp
	lim.mu.Lock()
	if lim.perClient == nil {
		lim.perClient = map[*Listener]map[netip.Addr]int{}
	}
	byClient := lim.perClient[l]
	if lim.open >= s.cfg.MaxTCPConns || byClient[client] >= s.cfg.MaxTCPConnsPerClient {
		lim.mu.Unlock()
		// Counted before the close, which the client sees.
		l.count.tcpRefused.Add(1)
		c.Close()
		return nil
	}
	if byClient == nil {
		byClient = map[netip.Addr]int{}
		lim.perClient[l] = byClient
	}
	byClient[client]++
	lim.open++
	lim.mu.Unlock()
	return &limitedConn{Conn: c, l: l, client: client}
}

// release counts a connection of client out.
func (l *Listener) release(client netip.Addr) {
	lim := &l.srv.tcp
	lim.mu.Lock()
	defer lim.mu.Unlock()
	lim.open--
	byClient := lim.perClient[l]
	if byClient[client]--; byClient[client] <= 0 {
		delete(byClient, client)
	}
	if len(byClient) == 0 {
		delete(lim.perClient, l)
	}
}

// OpenTCPConns is the number of TCP connections the server holds open.
func (s *Server) OpenTCPConns() int {
	s.tcp.mu.Lock()
	defer s.tcp.mu.Unlock()
	return s.tcp.open
}

// limitedConn is a connection counted in; Close counts it out, once.
type limitedConn struct {
	net.Conn
	l      *Listener
	client netip.Addr
	once   sync.Once
}

// Close implements net.Conn.
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.client) })
	return c.Conn.Close()
}
