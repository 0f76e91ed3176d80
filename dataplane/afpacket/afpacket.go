// Package afpacket reads and writes Ethernet frames on a host NIC through
// an AF_PACKET socket: the uplink of transparent and l2bridge networks.
package afpacket
