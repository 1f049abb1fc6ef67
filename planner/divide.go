package planner

import (
	"hash/fnv"
	"math/bits"
	"sort"
)

// Divide splits replicas across clusters by static weights the way Karmada v1.16 and later
// does (Webster / Sainte-Laguë): starting from zero, each replica goes to the cluster with the
// highest weight/(2·current+1). Ties go to the cluster with fewer replicas, then by name:
// the larger name when the FNV-32a hash of the workload's uid is odd, else the smaller.
// Clusters with a weight of zero or less take no part; clusters that get nothing are omitted.
func Divide(weights map[string]int64, replicas int32, uid string) map[string]int32 {
	type party struct {
		name  string
		votes int64
		seats int32
	}
	parties := make([]*party, 0, len(weights))
	for name, w := range weights {
		if w > 0 {
			parties = append(parties, &party{name: name, votes: w})
		}
	}
	sort.Slice(parties, func(i, j int) bool { return parties[i].name < parties[j].name })
	out := map[string]int32{}
	if len(parties) == 0 {
		return out
	}
	largerNameWins := false
	if uid != "" {
		h := fnv.New32a()
		h.Write([]byte(uid))
		largerNameWins = h.Sum32()&1 == 1
	}
	// better reports whether a deserves the next replica more than b.
	better := func(a, b *party) bool {
		// a.votes/(2a.seats+1) vs b.votes/(2b.seats+1), cross-multiplied exactly in 128 bits.
		ah, al := bits.Mul64(uint64(a.votes), uint64(2*int64(b.seats)+1))
		bh, bl := bits.Mul64(uint64(b.votes), uint64(2*int64(a.seats)+1))
		if ah != bh {
			return ah > bh
		}
		if al != bl {
			return al > bl
		}
		if a.seats != b.seats {
			return a.seats < b.seats
		}
		if largerNameWins {
			return a.name > b.name
		}
		return a.name < b.name
	}
	for n := int32(0); n < replicas; n++ {
		best := parties[0]
		for _, p := range parties[1:] {
			if better(p, best) {
				best = p
			}
		}
		best.seats++
	}
	for _, p := range parties {
		if p.seats > 0 {
			out[p.name] = p.seats
		}
	}
	return out
}
