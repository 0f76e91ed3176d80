// Package vxnet is the root of the vxnet module; it holds only repository
// tests (the import rules). The product is the vxnet command in cmd/vxnet.
package vxnet
