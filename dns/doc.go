// Package dns is vxnet's embedded DNS server: it answers container names,
// aliases, services (`svc`, `tasks.svc`), PTR and SRV from a Records
// snapshot, scoped by network and by view, and forwards the names vxnet
// does not own to at most three upstream servers.
//
// # Names
//
// A container's listener is bound to a View: the networks it is attached
// to. It sees the names on those networks only, as `name.` and
// `name.network.` (Docker answers both); a name on several of them answers
// with the union of its records. Names are case-insensitive, and the
// question comes back as the client spelled it. Container resolv.conf says
// `options ndots:0` (ContainerResolvConf), so a bare name is asked as is,
// before any search domain.
//
// # Answers
//
// A name in the view with records of the asked type: NOERROR, AA, those
// records (service addresses shuffled in every answer). A name in the view
// without that type: NOERROR and no records (NODATA), never forwarded. A
// name not in the view: forwarded when some network of the view is known
// and not internal; NXDOMAIN when all its networks are internal (Docker
// answers SERVFAIL there, which stops resolvers such as c-ares from trying
// the next search domain, moby#45553; on an internal network nothing else
// can exist); SERVFAIL when there is no upstream or no Records yet.
// Negative answers carry no SOA, so resolvers do not cache them, and the
// TTL of positive ones is DefaultTTL (10 s), so churn is seen quickly.
// UDP answers are cut to whole records within the client's EDNS0 size (512
// without EDNS0, never more than Config.UDPSize) with TC set; TCP answers
// are whole. Malformed queries get FORMERR (NOTIMP for other opcodes,
// BADVERS for EDNS versions past 0) or, if not even a query header, no
// answer; nothing panics (FuzzHandler).
//
// # Design
//
// The lookup table and the handler are separate (CoreDNS hosts plugin
// style). Table, the in-memory Records, is built from networks and
// endpoints by the control plane, indexed by lower-case FQDN, with every
// answer pre-packed for the wire (RRSet): owner names are compression
// pointers to the question, so answering is copying the query's header and
// question and appending records. The server holds the snapshot in an
// atomic.Pointer; SetRecords swaps it and re-binds each listener's view, so
// a query does one atomic load, one parse, one map lookup and a copy, with
// no lock and no allocation (TestHandler_answer_zeroAllocs).
//
// UDP is served by a loop of our own on each socket: recvmmsg/sendmmsg
// batches on Linux (udp_linux.go), one datagram at a time elsewhere, each
// query answered in place from the raw bytes. This is what puts a single
// core ahead of dnsmasq (bench.RunDNS); miekg's server spends most of its
// time on a goroutine, an Unpack and a Pack per query. On Linux the loop
// has an OS thread of its own, asleep in a blocking recvmmsg on a
// descriptor taken out of Go's netpoller (Serve closes the net.UDPConn and
// keeps a duplicate): a query that finds it idle costs one kernel wakeup,
// as with dnsmasq, not an epoll wakeup, a goroutine switch and a wakeup of
// the runtime's sysmon thread. Close wakes it with shutdown(2). The price
// is one thread per listener, blocked while idle, and a second P wanted
// (GOMAXPROCS ≥ 2; see udpSocket). TCP is miekg's server with Handler,
// which packs the request and takes the same path; its connections are
// capped per client address and in all (limit.go), and closed when silent.
// Forwarding uses miekg's client from the agent's namespace, one upstream
// after the other with Config.UpstreamTimeout each; UDP queries waiting on
// upstreams leave the loop on goroutines of their own, at most
// Config.MaxForwards at once.
//
// In a container, the listener is 127.0.0.11:53 (ContainerAddr) opened
// inside its network namespace (ListenNetns) and resolv.conf points there
// (WriteResolvConf; for `ip netns` namespaces at NetnsResolvConfPath).
package dns
