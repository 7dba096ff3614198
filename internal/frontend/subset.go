package frontend

import "sort"

// Assignment is what one front end may use of a service's replicas.
type Assignment struct {
	Replicas []Replica
	// Forward is the peer (index into peers) to send requests to when this
	// front end holds no slots; -1 when it holds some or there are none.
	Forward int
}

// Subset divides a service's ready replicas (each with slots requests at
// once) among n front ends so the slots handed out for a replica never
// exceed its concurrency. Every front end computes the same answer from the
// same sorted inputs. self is this front end's index.
func Subset(replicas []Replica, slots, n, self int) Assignment {
	rs := append([]Replica(nil), replicas...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	if n <= 1 || self < 0 || self >= n {
		for i := range rs {
			rs[i].Slots = slots
		}
		return Assignment{Replicas: rs, Forward: -1}
	}
	r := len(rs)
	if r == 0 {
		return Assignment{Forward: -1}
	}
	var mine []Replica
	if r >= n {
		for j := range rs {
			if j%n == self {
				rep := rs[j]
				rep.Slots = slots
				mine = append(mine, rep)
			}
		}
		return Assignment{Replicas: mine, Forward: -1}
	}
	// Fewer replicas than front ends: replica j's slots are split among
	// the front ends i with i mod r == j, in that order; self is number
	// self/r of its group.
	j := self % r
	group := (n-1-j)/r + 1
	s := slots / group
	if self/r < slots%group {
		s++
	}
	if s > 0 {
		rep := rs[j]
		rep.Slots = s
		return Assignment{Replicas: []Replica{rep}, Forward: -1}
	}
	// No slots here: forward to the first front end holding slots of the
	// same replica (the group's first member always has one).
	return Assignment{Forward: j}
}
