package linodeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// The X-Filter language, as far as this server speaks it: an object whose keys are
// fields (exact match; on a list such as tags, membership), "+and"/"+or" (lists of such
// objects) and, at the top, "+order_by"/"+order". A field's value may also be an
// object of operators: +contains, +neq, +gt, +gte, +lt, +lte.

type filter struct {
	match   func(map[string]any) bool
	orderBy string
	desc    bool
}

func parseFilter(h string, fields map[string]bool) (*filter, *apiError) {
	f := &filter{match: func(map[string]any) bool { return true }}
	if strings.TrimSpace(h) == "" {
		return f, nil
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(h), &raw); err != nil {
		return nil, apiErr("Invalid JSON", "X-Filter")
	}
	if ob, ok := raw["+order_by"]; ok {
		s, _ := ob.(string)
		if !fields[s] {
			return nil, apiErr(fmt.Sprintf("Cannot order by %v", ob), "X-Filter")
		}
		f.orderBy = s
		delete(raw, "+order_by")
	}
	if o, ok := raw["+order"]; ok {
		switch o {
		case "asc":
		case "desc":
			f.desc = true
		default:
			return nil, apiErr("Order must be asc or desc", "X-Filter")
		}
		delete(raw, "+order")
	}
	m, e := compileObject(raw, fields)
	if e != nil {
		return nil, e
	}
	f.match = m
	return f, nil
}

func compileObject(obj map[string]any, fields map[string]bool) (func(map[string]any) bool, *apiError) {
	var parts []func(map[string]any) bool
	for k, v := range obj {
		switch k {
		case "+and", "+or":
			list, ok := v.([]any)
			if !ok {
				return nil, apiErr(k+" must be a list", "X-Filter")
			}
			var subs []func(map[string]any) bool
			for _, item := range list {
				o, ok := item.(map[string]any)
				if !ok {
					return nil, apiErr(k+" must be a list of objects", "X-Filter")
				}
				m, e := compileObject(o, fields)
				if e != nil {
					return nil, e
				}
				subs = append(subs, m)
			}
			and := k == "+and"
			parts = append(parts, func(x map[string]any) bool {
				for _, m := range subs {
					if m(x) != and {
						return !and // +and: one miss fails; +or: one hit passes
					}
				}
				return and
			})
		default:
			if strings.HasPrefix(k, "+") || !fields[k] {
				return nil, apiErr("Cannot filter on "+k, "X-Filter")
			}
			m, e := compileField(k, v)
			if e != nil {
				return nil, e
			}
			parts = append(parts, m)
		}
	}
	return func(x map[string]any) bool {
		for _, p := range parts {
			if !p(x) {
				return false
			}
		}
		return true
	}, nil
}

func compileField(field string, v any) (func(map[string]any) bool, *apiError) {
	ops, isOps := v.(map[string]any)
	if !isOps {
		return func(x map[string]any) bool {
			return anyValue(fieldValue(x, field), func(a any) bool { return equal(a, v) })
		}, nil
	}
	var parts []func(any) bool
	for op, want := range ops {
		switch op {
		case "+contains":
			w := fmt.Sprint(want)
			parts = append(parts, func(a any) bool { s, ok := a.(string); return ok && strings.Contains(s, w) })
		case "+neq":
			parts = append(parts, func(a any) bool { return !equal(a, want) })
		case "+gt", "+gte", "+lt", "+lte":
			op, want := op, want
			parts = append(parts, func(a any) bool {
				c, ok := compare(a, want)
				if !ok {
					return false
				}
				switch op {
				case "+gt":
					return c > 0
				case "+gte":
					return c >= 0
				case "+lt":
					return c < 0
				}
				return c <= 0
			})
		default:
			return nil, apiErr(fmt.Sprintf("Unknown operator %s", op), "X-Filter")
		}
	}
	return func(x map[string]any) bool {
		return anyValue(fieldValue(x, field), func(a any) bool {
			for _, p := range parts {
				if !p(a) {
					return false
				}
			}
			return true
		})
	}, nil
}

// anyValue applies p to a scalar, or to each element of a list (tags).
func anyValue(v any, p func(any) bool) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if p(e) {
				return true
			}
		}
		return false
	}
	return p(v)
}

func equal(a, b any) bool {
	if af, ok := a.(float64); ok {
		switch bv := b.(type) {
		case float64:
			return af == bv
		case string:
			bf, err := strconv.ParseFloat(bv, 64)
			return err == nil && af == bf
		}
		return false
	}
	return fmt.Sprint(a) == fmt.Sprint(b) && (a == nil) == (b == nil)
}

func compare(a, b any) (int, bool) {
	af, aok := a.(float64)
	bf, bok := b.(float64)
	if aok && bok {
		switch {
		case af < bf:
			return -1, true
		case af > bf:
			return 1, true
		}
		return 0, true
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.Compare(as, bs), true
	}
	return 0, false
}

type page struct {
	Data    []any `json:"data"`
	Page    int   `json:"page"`
	Pages   int   `json:"pages"`
	Results int   `json:"results"`
}

// writeList filters, orders and paginates items (structs with JSON tags) as the
// real collections do: page (1-based) and page_size (default 100, at most 500).
func writeList(w http.ResponseWriter, r *http.Request, items []any, fields map[string]bool) {
	f, e := parseFilter(r.Header.Get("X-Filter"), fields)
	if e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	pageNo, size := 1, 100
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, apiErr("Must be a positive integer", "page"))
			return
		}
		pageNo = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, apiErr("Must be between 1 and 500", "page_size"))
			return
		}
		size = n
	}
	type kept struct {
		item any
		obj  map[string]any
	}
	var ks []kept
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			continue
		}
		var obj map[string]any
		if json.Unmarshal(b, &obj) != nil {
			continue
		}
		if f.match(obj) {
			ks = append(ks, kept{it, obj})
		}
	}
	if f.orderBy != "" {
		sort.SliceStable(ks, func(i, j int) bool {
			c, _ := compare(fieldValue(ks[i].obj, f.orderBy), fieldValue(ks[j].obj, f.orderBy))
			if f.desc {
				return c > 0
			}
			return c < 0
		})
	}
	pages := max((len(ks)+size-1)/size, 1)
	out := page{Data: []any{}, Page: pageNo, Pages: pages, Results: len(ks)}
	for i := (pageNo - 1) * size; i < len(ks) && i < pageNo*size; i++ {
		out.Data = append(out.Data, ks[i].item)
	}
	writeJSON(w, http.StatusOK, out)
}

// fieldValue is a field of an object, a dotted name reaching into nested objects
// ("entity.type" of an event), as the real API filters on them.
func fieldValue(x map[string]any, field string) any {
	head, rest, nested := strings.Cut(field, ".")
	if !nested {
		return x[field]
	}
	sub, ok := x[head].(map[string]any)
	if !ok {
		return nil
	}
	return fieldValue(sub, rest)
}
