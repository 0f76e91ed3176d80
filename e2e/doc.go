// Package e2e holds vxnet's end-to-end tests. They build the vxnet binary
// and run it in network namespaces they create (with veth underlays, the
// Linux kernel's own vxlan device as an independent VXLAN peer, ping and
// real TCP stacks), and remove everything when they end, failed or not.
// They need root and skip without it.
package e2e
