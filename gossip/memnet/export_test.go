package memnet

// The queue sizes, for the tests of what happens when a queue is full.
const (
	PacketBuffer = packetBuffer
	StreamBuffer = streamBuffer
)
