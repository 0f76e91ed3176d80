//go:build !linux

package etcdrun

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
