package planner

import (
	"hash/fnv"
	"maps"
	"reflect"
	"testing"
)

func fnvOdd(uid string) bool {
	h := fnv.New32a()
	h.Write([]byte(uid))
	return h.Sum32()&1 == 1
}

func TestDivide(t *testing.T) {
	t.Parallel()
	// The parity of the uids the cases rely on, as reference.md §2.9 states it.
	if !fnvOdd("uid-1") || fnvOdd("uid-2") {
		t.Fatalf("uid-1 must hash odd and uid-2 even under FNV-32a")
	}
	abc := func(a, b, c int64) map[string]int64 {
		return map[string]int64{"member-a": a, "member-b": b, "member-c": c}
	}
	cases := []struct {
		name     string
		weights  map[string]int64
		replicas int32
		uid      string
		want     map[string]int32
	}{
		{"2:1:2 of 10, empty uid", abc(2, 1, 2), 10, "", map[string]int32{"member-a": 4, "member-b": 2, "member-c": 4}},
		{"2:1:2 of 10, odd uid", abc(2, 1, 2), 10, "uid-1", map[string]int32{"member-a": 4, "member-b": 2, "member-c": 4}},
		{"1:1:1 of 10, empty uid: smaller name wins", abc(1, 1, 1), 10, "", map[string]int32{"member-a": 4, "member-b": 3, "member-c": 3}},
		{"1:1:1 of 10, even uid: smaller name wins", abc(1, 1, 1), 10, "uid-2", map[string]int32{"member-a": 4, "member-b": 3, "member-c": 3}},
		{"1:1:1 of 10, odd uid: larger name wins", abc(1, 1, 1), 10, "uid-1", map[string]int32{"member-a": 3, "member-b": 3, "member-c": 4}},
		{"2:1:2 of 7", abc(2, 1, 2), 7, "", map[string]int32{"member-a": 3, "member-b": 1, "member-c": 3}},
		{"2:1 of 2 (the old floor+remainder gave 2:0)", map[string]int64{"member-a": 2, "member-b": 1}, 2, "", map[string]int32{"member-a": 1, "member-b": 1}},
		{"1:1:1 of 2, even uid", abc(1, 1, 1), 2, "uid-2", map[string]int32{"member-a": 1, "member-b": 1}},
		{"1:1:1 of 2, odd uid", abc(1, 1, 1), 2, "uid-1", map[string]int32{"member-b": 1, "member-c": 1}},
		{"170:110:60 of 4", abc(170, 110, 60), 4, "", map[string]int32{"member-a": 2, "member-b": 1, "member-c": 1}},
		{"170:110:60 of 5", abc(170, 110, 60), 5, "", map[string]int32{"member-a": 2, "member-b": 2, "member-c": 1}},
		{"170:110:60 of 6", abc(170, 110, 60), 6, "", map[string]int32{"member-a": 3, "member-b": 2, "member-c": 1}},
		{"regions 2:1:2 of 10", map[string]int64{"us": 2, "ap": 1, "eu": 2}, 10, "", map[string]int32{"eu": 4, "ap": 2, "us": 4}},
		{"low weight gets nothing when replicas are few", map[string]int64{"member-a": 10, "member-b": 1}, 1, "", map[string]int32{"member-a": 1}},
		{"zero and negative weights take no part", map[string]int64{"member-a": 0, "member-b": -1, "member-c": 1}, 3, "", map[string]int32{"member-c": 3}},
		{"no replicas", abc(1, 1, 1), 0, "", map[string]int32{}},
		{"no weights", nil, 5, "", map[string]int32{}},
		{"huge weights compare exactly", map[string]int64{"member-a": 1 << 62, "member-b": 1<<62 - 1}, 2, "", map[string]int32{"member-a": 1, "member-b": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Divide(tc.weights, tc.replicas, tc.uid)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Divide(%v, %d, %q) = %v, want %v", tc.weights, tc.replicas, tc.uid, got, tc.want)
			}
		})
	}
}

// Webster never takes a replica away from a cluster when the total grows, and always hands
// out exactly the replicas asked for.
func TestDivideHouseMonotone(t *testing.T) {
	t.Parallel()
	weights := map[string]int64{"a": 7, "b": 3, "c": 3, "d": 1}
	for _, uid := range []string{"", "uid-1", "uid-2"} {
		prev := map[string]int32{}
		for n := int32(0); n <= 60; n++ {
			got := Divide(weights, n, uid)
			var sum int32
			for k, v := range got {
				sum += v
				if v < prev[k] {
					t.Fatalf("uid %q: %s went from %d to %d when replicas grew to %d", uid, k, prev[k], v, n)
				}
			}
			if sum != n {
				t.Fatalf("uid %q: %d replicas divided into %v (sum %d)", uid, n, got, sum)
			}
			prev = got
		}
	}
}

// TestRolloutStages: every stage moves at most the shift, the last is the target's split,
// and a stage's weights divide to exactly its split (what the plan predicts is what Karmada
// does).
func TestRolloutStages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from, to map[string]int64
		replicas int32
		shift    int32
	}{
		{map[string]int64{"ap": 1, "eu": 1, "us": 1}, map[string]int64{"ap": 1, "eu": 2, "us": 2}, 10, 1},
		{map[string]int64{"ap": 1, "eu": 1, "us": 1}, map[string]int64{"ap": 5, "eu": 1, "us": 1}, 10, 2},
		{map[string]int64{"ap": 1, "eu": 1}, map[string]int64{"us": 1}, 7, 3},
		{map[string]int64{"ap": 3, "eu": 1}, map[string]int64{"ap": 1, "eu": 3, "us": 4}, 100, 20},
	}
	for _, tc := range cases {
		for _, uid := range []string{"uid-1", "uid-2"} {
			stages := RolloutStages(tc.from, tc.to, tc.replicas, uid, tc.shift)
			prev := Divide(tc.from, tc.replicas, uid)
			for k, s := range stages {
				moved := int32(0)
				for m, n := range s {
					if n > prev[m] {
						moved += n - prev[m]
					}
				}
				if moved > tc.shift || moved == 0 {
					t.Errorf("%v -> %v stage %d moves %d replicas (shift %d)", tc.from, tc.to, k+1, moved, tc.shift)
				}
				if got := Divide(stageWeights(stages, k+1, tc.to), tc.replicas, uid); !maps.Equal(got, s) {
					t.Errorf("%v -> %v stage %d: weights divide to %v, the stage is %v", tc.from, tc.to, k+1, got, s)
				}
				prev = s
			}
			if want := Divide(tc.to, tc.replicas, uid); !maps.Equal(stages[len(stages)-1], want) {
				t.Errorf("%v -> %v ends at %v, want %v", tc.from, tc.to, stages[len(stages)-1], want)
			}
		}
	}
}
