// Package bench holds vxnet's benchmark scenarios. Each runs in-process or
// in network namespaces and returns numbers a report can print; the same
// functions serve `go test -bench` and `vxnet bench`.
package bench
