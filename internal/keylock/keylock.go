// Package keylock serialises work per key (a task, a node) with one mutex
// per key, kept only while someone holds or waits for it.
package keylock

import "sync"

// Map is a set of per-key mutexes. Its zero value is ready to use.
type Map struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	refs int
}

// Lock locks key's mutex and returns its unlock.
func (k *Map) Lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*entry{}
	}
	e := k.m[key]
	if e == nil {
		e = &entry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// held is how many keys are held or waited for (for tests).
func (k *Map) held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
