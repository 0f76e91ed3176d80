// Package seal encrypts and authenticates VXLAN datagrams between vxnet
// hosts: the wire format of encrypted overlay networks, the keys of each
// pair of hosts and how they are derived, and the replay window.
//
// # Wire format
//
// A sealed datagram is an ordinary VXLAN datagram on UDP 4789 whose
// payload after the VXLAN header is sealed:
//
//	 0                   1                   2                   3
//	+---------------+---------------+---------------+---------------+
//	|  flags 0x08   |           reserved (0)                        |  VXLAN header (RFC 7348),
//	+---------------+---------------+---------------+---------------+  in clear: the VNI steers
//	|                 VNI                           |  Marker 0x01   |  the datagram
//	+---------------+---------------+---------------+---------------+
//	|                          key id                               |  seal header, in clear
//	+---------------+---------------+---------------+---------------+
//	|                     counter (64 bits)                         |
//	|                                                               |
//	+---------------+---------------+---------------+---------------+
//	|       inner Ethernet frame, encrypted (as long as the frame)  |
//	+---------------+---------------+---------------+---------------+
//	|                     tag (16 bytes)                            |
//	+---------------+---------------+---------------+---------------+
//
// The last byte of the VXLAN header, reserved in RFC 7348, carries Marker:
// a kernel VXLAN device drops datagrams with reserved bits set, so sealed
// traffic is never taken for plain VXLAN. The key id names the key of the
// sending direction (SendKey.ID); the counter is the AEAD's nonce (four
// zero bytes and the counter, big-endian), used once per key: a key seals at
// most MaxCounter datagrams. The additional data is the VXLAN header and
// the seal header (HeaderLen bytes from the start of the VXLAN header), so
// that no bit of the datagram after the UDP header can change unnoticed.
// Overhead is the bytes a sealed datagram has more than a plain one: the
// inner MTU of an encrypted network is that much lower.
//
// The AEAD is AES-256-GCM where both hosts have AES instructions and
// ChaCha20-Poly1305 otherwise (Suite).
//
// # Keys
//
// Each host has a long-term X25519 key pair (Static), kept in its data
// directory readable by its owner alone, and a session X25519 key pair
// (Session) made at start and on every rotation, never written to disk.
// Both public keys are announced to the cluster. The keys of a pair of
// hosts A and B are
//
//	secret = X25519(A.static, B.static) ‖ X25519(A.session, B.session)
//	okm    = HKDF-SHA256(secret, salt "vxnet seal v1", info: suite ‖ the two
//	         static and two session public keys, lower static key first)
//	A→B key, B→A key, and their key ids: consecutive slices of okm
//
// The static-static part authenticates: only A and B can compute it. The
// session-session part makes old traffic safe when a static key leaks
// later (forward secrecy, once the session keys of that time are gone).
// Fresh session keys make fresh direction keys, whose counters start at
// zero: a nonce is never used twice, also across restarts.
//
// # Replay
//
// Each receiving key keeps a window of the last ReplayWindow counters
// (Window): a counter seen before, or older than the window, is refused;
// only a datagram whose tag verified moves the window. The window is
// lock-free, for receive loops that share a key.
package seal
