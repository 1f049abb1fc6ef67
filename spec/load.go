package spec

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Defaults applied by Load; each is also documented on its field.
const (
	DefaultTokenEnv          = "LINODE_TOKEN"
	DefaultRequestsPerSecond = 10
	DefaultWaitTimeout       = 20 * time.Minute
	DefaultPollInterval      = 10 * time.Second
	DefaultKarmadaRelease    = "karmada"
	DefaultKarmadaNamespace  = "karmada-system"
	DefaultKarmadaChartName  = "karmada"
	DefaultAPINodePort       = 32443
	DefaultKarmadaTimeout    = 10 * time.Minute
	DefaultWorkloadNamespace = "default"
	DefaultKeyType           = "rsa-4096"
	DefaultCAValidity        = 87600 * time.Hour
	DefaultRenewBefore       = 720 * time.Hour
	DefaultMeshTimeout       = 5 * time.Minute
	DefaultMeshChartRepo     = "https://istio-release.storage.googleapis.com/charts"
	DefaultMaxDeleteShare    = 0.34
)

// Load reads, decodes, defaults and validates a fleet file. Every problem is reported at
// once in an *Errors; on success the returned Fleet has its relative paths made absolute
// and its workloads' manifests read.
func Load(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse is Load for a document already read. file names the document in errors, and its
// directory anchors relative paths (charts and manifests are still read from disk).
func Parse(file string, data []byte) (*Fleet, error) {
	d := newDecoder(file)
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, err
	}
	f := &Fleet{Source: file}

	doc, ok := d.document(data)
	if ok && doc.Kind != yaml.MappingNode {
		d.errNode(doc, "", "want a fleet document (a mapping starting with apiVersion: %s and kind: %s), got %s", APIVersion, Kind, describe(doc))
		ok = false
	}
	if ok {
		d.pos[""] = position{doc.Line, doc.Column}
		d.decode(doc, reflect.ValueOf(f).Elem(), "")
	}
	decodeErrs := d.errs
	d.errs = nil
	if !ok {
		return nil, finish(decodeErrs, file)
	}

	ApplyDefaults(f)
	v := &validator{d: d, dir: dir, fleet: f}
	v.validate()
	all := decodeErrs
	for _, e := range d.errs {
		if !d.moot[e.Path] || e.File != file {
			all = append(all, e)
		}
	}
	if len(all) > 0 {
		return nil, finish(all, file)
	}
	resolvePaths(f, dir)
	return f, nil
}

func finish(list []FieldError, file string) error {
	sortErrors(list, file)
	return &Errors{List: list}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// parserProblems are the problems the YAML parser (as opposed to its scanner) reports; for
// these the library names a 0-based line, the start of the enclosing construct.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// yamlSyntaxError turns a YAML library error into a FieldError with a 1-based line.
// A message without a line (the parser hit the end of the stream) is put on the file's last
// line: that is where the unfinished construct ran out.
func yamlSyntaxError(file string, data []byte, err error) FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	if parserProblems[msg] {
		line++
	}
	if line == 0 {
		line = bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n")) + 1
	}
	return FieldError{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// document parses the fleet file, which must hold exactly one YAML document.
func (d *decoder) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.errs = append(d.errs, yamlSyntaxError(d.file, data, err))
			return nil, false
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 || len(docs[0].Content) == 0 {
		d.errAt(1, 1, "", "the file is empty: want a fleet document starting with apiVersion: %s and kind: %s", APIVersion, Kind)
		return nil, false
	}
	if len(docs) > 1 {
		d.errAt(docs[1].Line, docs[1].Column, "", "the file holds %d YAML documents: want exactly one fleet document", len(docs))
		return nil, false
	}
	return docs[0].Content[0], true
}

// ApplyDefaults fills every unset field that has a default. Load and Parse call it; every
// layer reads the defaulted fleet and applies no default of its own. It is idempotent.
func ApplyDefaults(f *Fleet) {
	lke := false
	for _, c := range f.clusters() {
		if c.IsLKE() {
			lke = true
		}
	}
	if (lke || f.Entry != nil) && f.Provider.Linode == nil {
		f.Provider.Linode = &Linode{}
	}
	if l := f.Provider.Linode; l != nil {
		if l.TokenEnv == "" {
			l.TokenEnv = DefaultTokenEnv
		}
		if l.RequestsPerSecond == 0 {
			l.RequestsPerSecond = DefaultRequestsPerSecond
		}
		defaultDuration(&l.WaitTimeout, DefaultWaitTimeout)
		defaultDuration(&l.PollInterval, DefaultPollInterval)
	}
	if f.JoinMode == "" {
		f.JoinMode = Push
	}
	defaultPools(f.Manager.Pools)
	for i := range f.Members {
		defaultPools(f.Members[i].Pools)
	}

	k := &f.Manager.Karmada
	if k.Release == "" {
		k.Release = DefaultKarmadaRelease
	}
	if k.Namespace == "" {
		k.Namespace = DefaultKarmadaNamespace
	}
	if k.APINodePort == 0 {
		k.APINodePort = DefaultAPINodePort
	}
	defaultDuration(&k.Timeout, DefaultKarmadaTimeout)
	if k.Chart.Name == "" && k.Chart.Path == "" {
		k.Chart.Name = DefaultKarmadaChartName
	}

	for i := range f.Workloads {
		if f.Workloads[i].Namespace == "" {
			f.Workloads[i].Namespace = DefaultWorkloadNamespace
		}
		if r := f.Workloads[i].Rollout; r != nil {
			if r.MaxShift == (Shift{}) {
				r.MaxShift.Percent = DefaultRolloutMaxShiftPercent
			}
			if r.Gate == "" {
				r.Gate = GateAvailable
			}
			defaultDuration(&r.Timeout, DefaultRolloutTimeout)
		}
	}

	defaultEntry(f)
	if m := f.Mesh; m != nil {
		if m.Enabled == nil {
			on := true
			m.Enabled = &on
		}
		if m.EastWestGateway == nil {
			on := true
			m.EastWestGateway = &on
		}
		if m.CA.KeyType == "" {
			m.CA.KeyType = DefaultKeyType
		}
		defaultDuration(&m.CA.RootValidity, DefaultCAValidity)
		defaultDuration(&m.CA.IntermediateValidity, DefaultCAValidity)
		defaultDuration(&m.CA.RenewBefore, DefaultRenewBefore)
		defaultDuration(&m.Timeout, DefaultMeshTimeout)
		if m.Chart.Repo == "" && m.Chart.OCI == "" && m.Chart.Path == "" {
			m.Chart.Repo = DefaultMeshChartRepo
		}
		if m.Chart.Version == "" && m.Chart.Path == "" {
			m.Chart.Version = m.Version
		}
	}

	if f.Safety.MaxDeleteShare == nil {
		share := DefaultMaxDeleteShare
		f.Safety.MaxDeleteShare = &share
	}

	defaultDuration(&f.Credentials.TokenRotation, DefaultTokenRotation)

	if f.State.Backend == "" {
		f.State.Backend = LocalState
	}
	if k := f.State.Kubernetes; k != nil {
		if k.Namespace == "" {
			k.Namespace = DefaultStateNamespace
		}
		defaultDuration(&k.LeaseDuration, DefaultLeaseDuration)
	}
}

func defaultDuration(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

// defaultPools sets an autoscaled pool's count to its minimum when the count is left out.
func defaultPools(pools []Pool) {
	for i := range pools {
		if a := pools[i].Autoscaler; a != nil && pools[i].Count == 0 {
			pools[i].Count = a.Min
		}
	}
}

// clusters returns pointers to the manager's and the members' clusters, manager first.
func (f *Fleet) clusters() []*Cluster {
	out := []*Cluster{&f.Manager.Cluster}
	for i := range f.Members {
		out = append(out, &f.Members[i].Cluster)
	}
	return out
}

// resolvePath makes p absolute against dir, expanding a leading ~/ to $HOME.
func resolvePath(dir, p string) string {
	if p == "" {
		return ""
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, strings.TrimPrefix(p[1:], "/"))
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// resolvePaths stores every path of the document in absolute form.
func resolvePaths(f *Fleet, dir string) {
	if f.KubeconfigDir != "" {
		f.KubeconfigDir = resolvePath(dir, f.KubeconfigDir)
	}
	if k := f.State.Kubernetes; k != nil && k.Kubeconfig != "" {
		k.Kubeconfig = resolvePath(dir, k.Kubeconfig)
	}
	if l := f.Provider.Linode; l != nil && l.TokenFile != "" {
		l.TokenFile = resolvePath(dir, l.TokenFile)
	}
	for _, c := range f.clusters() {
		if c.Kubeconfig != nil {
			c.Kubeconfig.Path = resolvePath(dir, c.Kubeconfig.Path)
		}
	}
	f.Manager.Karmada.Chart.Path = resolvePath(dir, f.Manager.Karmada.Chart.Path)
	if f.Mesh != nil {
		f.Mesh.Chart.Path = resolvePath(dir, f.Mesh.Chart.Path)
	}
	for i := range f.Workloads {
		for j, m := range f.Workloads[i].Manifests {
			f.Workloads[i].Manifests[j] = resolvePath(dir, m)
		}
	}
}

// MemberJoinMode is the member's own join mode, or else the fleet's (Push when unset).
func (f *Fleet) MemberJoinMode(m Member) JoinMode {
	if m.JoinMode != "" {
		return m.JoinMode
	}
	if f.JoinMode != "" {
		return f.JoinMode
	}
	return Push
}

// Member finds a member by name.
func (f *Fleet) Member(name string) (*Member, bool) {
	for i := range f.Members {
		if f.Members[i].Name == name {
			return &f.Members[i], true
		}
	}
	return nil, false
}

// ClusterNames lists the manager then the members, in file order.
func (f *Fleet) ClusterNames() []string {
	out := []string{f.Manager.Name}
	for _, m := range f.Members {
		out = append(out, m.Name)
	}
	return out
}

// MeshOn reports whether the fleet wants the Istio mesh.
func (f *Fleet) MeshOn() bool { return f.Mesh.On() }
