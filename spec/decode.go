package spec

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// position is where a field sits in the fleet file.
type position struct{ line, col int }

// decoder turns a YAML node tree into the Fleet types, strictly: every unknown key, wrong
// type and duplicate is an error, all of them collected, each with the position of its node.
// Walking the nodes ourselves (rather than unmarshalling) is what gives every field path a
// line and column, which validation reuses.
type decoder struct {
	file string
	errs []FieldError
	// pos maps a field path to the position of its key (or of the item, for list items).
	pos map[string]position
	// moot holds paths whose own validation would only repeat a decoding error (a field
	// that failed to decode, or a required field that is misspelled as a reported unknown key).
	moot map[string]bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]position{}, moot: map[string]bool{}}
}

func (d *decoder) errAt(line, col int, path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{File: d.file, Line: line, Col: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) errNode(n *yaml.Node, path, format string, args ...any) {
	d.moot[path] = true
	d.errAt(n.Line, n.Column, path, format, args...)
}

// at finds the position for a path, falling back to its nearest ancestor that is in the file.
func (d *decoder) at(path string) position {
	for p := path; ; p = parentPath(p) {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		if p == "" {
			return position{1, 1}
		}
	}
}

// parentPath strips the last segment: "a.b[2]" -> "a.b", "a.b" -> "a", "a" -> "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

var (
	durationType = reflect.TypeOf(Duration{})
	shiftType    = reflect.TypeOf(Shift{})
)

// decode fills v from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the field unset (and so defaulted)
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	if v.Type() == shiftType {
		d.shift(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errNode(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.errNode(n, path, "want a string, got %s%s", describe(n), quoteHint(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errNode(n, path, "want true or false, got %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.errNode(n, path, "want a whole number, got %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.errNode(n, path, "%s is too large", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.errNode(n, path, "want a number, got %s", describe(n))
			return
		}
		// .nan and .inf are YAML floats, but no setting means them: NaN compares false with
		// every bound, so a range check would let it through and disarm the guard it sets.
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.errNode(n, path, "want a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.errNode(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.errNode(n, path, `want a duration such as "90s", "10m" or "1h30m", got %s`, describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errNode(n, path, `invalid duration %q: want a number with a unit (ns, us, ms, s, m, h), such as "90s", "10m" or "1h30m"`, n.Value)
		return
	}
	v.Set(reflect.ValueOf(Duration{dur}))
}

// shift reads "20%" or a whole number of replicas.
func (d *decoder) shift(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		d.errNode(n, path, `want a share such as "20%%" or a number of replicas such as 2, got %s`, describe(n))
		return
	}
	s, err := ParseShift(n.Value)
	if err != nil {
		d.errNode(n, path, "%s", err.Error())
		return
	}
	v.Set(reflect.ValueOf(s))
}

// pair is one key/value of a mapping; merged is true for pairs brought in by a `<<` merge key.
type pair struct {
	key, value *yaml.Node
	merged     bool
}

// pairs lists a mapping's entries with YAML merge keys expanded (explicit keys come last so
// they win); it reports a node that is not a mapping.
func (d *decoder) pairs(n *yaml.Node, path string) ([]pair, bool) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.errNode(n, path, "want a mapping (key: value lines), got %s", describe(n))
		return nil, false
	}
	var merged, own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			sources := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				sources = val.Content
			}
			for _, src := range sources {
				ps, ok := d.pairs(src, path)
				if !ok {
					continue
				}
				for _, p := range ps {
					p.merged = true
					merged = append(merged, p)
				}
			}
			continue
		}
		own = append(own, pair{key: k, value: val})
	}
	// Duplicates among explicit keys are mistakes; a merge overridden by a key is not.
	seen := map[string]*yaml.Node{}
	var out []pair
	out = append(out, merged...)
	for _, p := range own {
		if p.key.Kind != yaml.ScalarNode {
			d.errNode(p.key, path, "want a plain key, got %s", describe(p.key))
			continue
		}
		if first, dup := seen[p.key.Value]; dup {
			d.errAt(p.key.Line, p.key.Column, join(path, p.key.Value), "duplicate key %q (first set on line %d)", p.key.Value, first.Line)
			continue
		}
		seen[p.key.Value] = p.key
		out = append(out, p)
	}
	return out, true
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	ps, ok := d.pairs(n, path)
	if !ok {
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range ps {
		name := p.key.Value
		fpath := join(path, name)
		f, known := fields.byName[name]
		if !known {
			if p.merged {
				continue // anchors are often shared between differently shaped mappings
			}
			msg := fmt.Sprintf("unknown field `%s`", name)
			if s := closest(name, fields.names); s != "" {
				msg += fmt.Sprintf(", did you mean `%s`?", s)
				d.moot[join(path, s)] = true
			} else {
				msg += "; known fields here: " + strings.Join(fields.names, ", ")
			}
			d.errAt(p.key.Line, p.key.Column, fpath, "%s", msg)
			continue
		}
		if _, set := d.pos[fpath]; !set || !p.merged {
			d.pos[fpath] = position{p.key.Line, p.key.Column}
		}
		d.decode(p.value, v.FieldByIndex(f.index), fpath)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		d.errNode(n, path, "want a list (lines starting with \"- \"), got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ipath := index(path, i)
		d.pos[ipath] = position{item.Line, item.Column}
		d.decode(item, s.Index(i), ipath)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	ps, ok := d.pairs(n, path)
	if !ok {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for _, p := range ps {
		kpath := join(path, p.key.Value)
		d.pos[kpath] = position{p.key.Line, p.key.Column}
		e := reflect.New(et).Elem()
		d.decode(p.value, e, kpath)
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), e)
	}
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return describeKind(n)
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "nothing"
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
}

// describeKind is describe without the value: for files that may hold secrets (a manifest
// path pointing at a token file), whose content must never reach an error message.
func describeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "nothing"
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!") + " value"
}

// quoteHint suggests quoting a scalar that YAML read as a number or boolean where a string
// is wanted, the usual trap with versions such as 1.30.
func quoteHint(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool":
		return fmt.Sprintf(` (YAML reads it as a %s; quote it: "%s")`, strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
	}
	return ""
}

// field is one document field of a struct; index reaches through inlined structs.
type field struct {
	name      string
	index     []int
	omitempty bool
	typ       reflect.Type
	goName    string
	owner     reflect.Type
}

type fieldSet struct {
	list   []field
	byName map[string]field
	names  []string // sorted, for messages
}

// fieldsOf lists a struct's document fields by their json tags, with anonymous structs
// tagged ",inline" (or untagged) flattened in, as encoding/json does.
func fieldsOf(t reflect.Type) fieldSet {
	fs := fieldSet{byName: map[string]field{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, idx)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			f := field{name: name, index: idx, omitempty: strings.Contains(opts, "omitempty"), typ: sf.Type, goName: sf.Name, owner: t}
			fs.list = append(fs.list, f)
			fs.byName[name] = f
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	sort.Strings(fs.names)
	return fs
}

// closest returns the known name nearest to s, if it is near enough to be a likely typo.
func closest(s string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		d := editDistance(strings.ToLower(s), strings.ToLower(n))
		if d < bestD {
			best, bestD = n, d
		}
	}
	limit := 2
	if len(s) > 8 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the Damerau-Levenshtein (optimal string alignment) distance, so that a
// swap of two letters ("wieghts") counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
