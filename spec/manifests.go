package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// clusterScopedKinds are the kinds whose objects get no namespace by default.
var clusterScopedKinds = map[string]bool{
	"Namespace":                true,
	"ClusterRole":              true,
	"ClusterRoleBinding":       true,
	"CustomResourceDefinition": true,
	"PersistentVolume":         true,
	"StorageClass":             true,
}

// manifests checks that a workload's manifests exist and reads their objects into it.
func (v *validator) manifests(path string, w *Workload) {
	var files []string
	for i, m := range w.Manifests {
		mp := index(path+".manifests", i)
		if m == "" {
			v.errorf(mp, "manifest path is empty: want a .yaml file or a directory of them")
			continue
		}
		abs := resolvePath(v.dir, m)
		st, err := os.Stat(abs)
		if err != nil {
			v.errorf(mp, "manifest %s does not exist (relative paths start at the fleet file's directory %s)", abs, v.dir)
			continue
		}
		if !st.IsDir() {
			files = append(files, abs)
			continue
		}
		var found []string
		err = filepath.WalkDir(abs, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !de.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				found = append(found, p)
			}
			return nil
		})
		switch {
		case err != nil:
			v.errorf(mp, "cannot read manifest directory %s: %v", abs, err)
		case len(found) == 0:
			v.errorf(mp, "manifest directory %s holds no .yaml or .yml files", abs)
		}
		files = append(files, found...) // WalkDir walks in lexical order
	}

	var objs []ManifestObject
	for _, file := range files {
		objs = append(objs, v.readManifest(file, w.Namespace)...)
	}
	if len(objs) == 0 {
		return
	}
	w.Objects = objs
	raws := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		raws[i] = o.Raw
	}
	all, _ := json.Marshal(raws) // RawMessages that came out of json.Marshal cannot fail
	sum := sha256.Sum256(all)
	w.ManifestDigest = hex.EncodeToString(sum[:])
}

// readManifest reads the objects of one multi-document YAML file; its problems are
// reported with the manifest's own path and line.
func (v *validator) readManifest(file, namespace string) []ManifestObject {
	data, err := os.ReadFile(file)
	if err != nil {
		v.d.errs = append(v.d.errs, FieldError{File: file, Msg: err.Error()})
		return nil
	}
	fail := func(n *yaml.Node, format string, args ...any) {
		v.d.errs = append(v.d.errs, FieldError{File: file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []ManifestObject
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The parser's syntax messages name what it expected, never the content.
			v.d.errs = append(v.d.errs, yamlSyntaxError(file, data, err))
			break
		}
		if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
			continue // an empty document between --- separators
		}
		n := doc.Content[0]
		if n.Kind != yaml.MappingNode {
			fail(n, "want a Kubernetes object (a mapping with apiVersion, kind and metadata), got %s (is this a manifest?)", describeKind(n))
			continue
		}
		var obj map[string]any
		if err := n.Decode(&obj); err != nil {
			// The decoder's message may quote the file's content; say only where.
			fail(n, "cannot read this document as a Kubernetes object")
			continue
		}
		o, problems := manifestObject(obj, namespace)
		if len(problems) > 0 {
			fail(n, "%s", strings.Join(problems, "; "))
			continue
		}
		out = append(out, o)
	}
	return out
}

// manifestObject extracts what the planner needs from one object and defaults its namespace.
func manifestObject(obj map[string]any, namespace string) (ManifestObject, []string) {
	var problems []string
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return s
	}
	o := ManifestObject{APIVersion: str(obj, "apiVersion"), Kind: str(obj, "kind")}
	if o.APIVersion == "" {
		problems = append(problems, "apiVersion is missing (e.g. apps/v1)")
	}
	if o.Kind == "" {
		problems = append(problems, "kind is missing (e.g. Deployment)")
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	o.Name = str(meta, "name")
	if o.Name == "" {
		problems = append(problems, "metadata.name is missing")
	}
	o.Namespace = str(meta, "namespace")
	if o.Namespace == "" && !clusterScopedKinds[o.Kind] {
		o.Namespace = namespace
		meta["namespace"] = namespace
		obj["metadata"] = meta
	}
	if spec, ok := obj["spec"].(map[string]any); ok {
		if r, ok := spec["replicas"].(int); ok {
			if r < 0 || r > math.MaxInt32 {
				problems = append(problems, "spec.replicas is out of range")
			} else {
				r32 := int32(r)
				o.Replicas = &r32
			}
		}
	}
	if len(problems) > 0 {
		return o, problems
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return o, []string{"cannot convert to JSON: " + err.Error()}
	}
	o.Raw = raw
	return o, nil
}
