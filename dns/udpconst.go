package dns

// udpRecvLen is the largest UDP query read, on every platform; longer ones
// are dropped.
const udpRecvLen = 1500
