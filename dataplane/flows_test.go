package dataplane

import (
	"sync"
	"sync/atomic"
	"testing"
)

func flowOf(i int) (flowKey, addrKey, addrKey) {
	client := addrKey{0, 0xffff_0a00_0902}
	vip := addrKey{0, 0xffff_0a00_0964 + uint64(i%3)}
	task := addrKey{0, 0xffff_0a00_0a00 + uint64(i%7)}
	return flowKey{a: client, b: vip, ports: uint32(i)<<16 | 80, proto: protoTCP}, vip, task
}

// checkPaired: every live forward entry has its reverse entry (findable
// by readers) and every reverse entry an owner.
func checkPaired(t *testing.T, ft *flowTable, now int64) int {
	t.Helper()
	live := 0
	for i := range ft.fwd {
		f := &ft.fwd[i]
		if !f.live || now >= f.expires {
			continue
		}
		live++
		rk := flowKey{a: f.key.a, b: f.task, ports: f.key.ports, proto: f.key.proto}
		vip, ok := ft.rev.lookup(&rk, now)
		if !ok || vip != f.key.b {
			t.Fatalf("flow %x: reverse entry %v %v, want its VIP %v", f.key.ports, vip, ok, f.key.b)
		}
		if ft.owner[f.rev] != int32(i+1) {
			t.Fatalf("flow %x: reverse slot %d owned by %d", f.key.ports, f.rev, ft.owner[f.rev])
		}
	}
	return live
}

func TestFlowTable_expiresGrowsAndStaysBounded(t *testing.T) {
	p := &Port{}
	ft := newFlowTable(p, flowMinSlots)
	ft.publish()
	var tl tally
	now := int64(1_000_000)
	k, vip, task := flowOf(1)
	ft.insert(&k, task, vip, nil, now+10, now, &tl)
	if ft.lookup(&k, now+9) < 0 {
		t.Fatal("a flow is not found before it expires")
	}
	rk := flowKey{a: k.a, b: task, ports: k.ports, proto: k.proto}
	if _, ok := p.rev.Load().lookup(&rk, now+9); !ok {
		t.Fatal("its way back is not found")
	}
	if ft.lookup(&k, now+10) >= 0 {
		t.Fatal("a flow is found once it expired")
	}
	if _, ok := p.rev.Load().lookup(&rk, now+10); ok {
		t.Fatal("an expired flow's way back is still found")
	}

	// Growth keeps every flow.
	for i := range 3000 {
		k, vip, task := flowOf(i)
		ft.insert(&k, task, vip, nil, now+1000, now, &tl)
	}
	if len(ft.fwd) <= flowMinSlots || tl.flowsEvicted != 0 {
		t.Fatalf("3000 flows: %d slots, %d evicted", len(ft.fwd), tl.flowsEvicted)
	}
	if live := checkPaired(t, ft, now); live != 3000 {
		t.Fatalf("%d flows live after growth, want 3000", live)
	}
	for i := range 3000 {
		k, _, _ := flowOf(i)
		if ft.lookup(&k, now) < 0 {
			t.Fatalf("flow %d lost in growth", i)
		}
	}
	if p.rev.Load() != ft.rev {
		t.Fatal("the grown reverse table is not the published one")
	}

	// Bounded: far more flows than slots.
	for i := range 3 * flowMaxSlots {
		k, vip, task := flowOf(i + 5000)
		ft.insert(&k, task, vip, nil, now+2000+int64(i), now, &tl)
	}
	if len(ft.fwd) != flowMaxSlots || tl.flowsEvicted == 0 {
		t.Fatalf("%d slots (bound %d), %d evicted", len(ft.fwd), flowMaxSlots, tl.flowsEvicted)
	}
	live := checkPaired(t, ft, now)
	t.Logf("bound %d slots: %d flows live, %d evicted", flowMaxSlots, live, tl.flowsEvicted)
	// The newest flows are there: eviction takes the one that expires first.
	k, _, _ = flowOf(3*flowMaxSlots - 1 + 5000)
	if ft.lookup(&k, now) < 0 {
		t.Error("the newest flow was evicted")
	}
}

// TestFlowTable_readersNeverSeeATornEntry: readers on other goroutines
// look up the way back while the owner inserts, retasks and grows; every
// answer they get is the VIP of the key they asked for.
func TestFlowTable_readersNeverSeeATornEntry(t *testing.T) {
	p := &Port{}
	ft := newFlowTable(p, flowMinSlots)
	ft.publish()
	now := int64(1)
	var stop atomic.Bool
	var wrong, found atomic.Uint64
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i = (i + 1) % 20000 {
				k, vip, task := flowOf(i)
				rk := flowKey{a: k.a, b: task, ports: k.ports, proto: k.proto}
				if got, ok := p.rev.Load().lookup(&rk, now); ok {
					found.Add(1)
					if got != vip {
						wrong.Add(1)
					}
				}
			}
		}()
	}
	var tl tally
	for round := range 4 {
		for i := range 20000 {
			k, vip, task := flowOf(i)
			if slot := ft.lookup(&k, now); slot >= 0 && round%2 == 1 {
				ft.retask(slot, task, nil, now+100, now, &tl)
				continue
			}
			ft.insert(&k, task, vip, nil, now+100, now, &tl)
		}
	}
	stop.Store(true)
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("readers got %d wrong VIPs (of %d answers)", wrong.Load(), found.Load())
	}
	if found.Load() == 0 {
		t.Fatal("readers found nothing: the test proved nothing")
	}
	checkPaired(t, ft, now)
}
