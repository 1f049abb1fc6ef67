package spec

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a fleet file (or in a manifest it names), with its position.
type FieldError struct {
	File string
	// Line and Col are 1-based; 0 means unknown.
	Line, Col int
	// Path is the field path in the document, e.g. "members[1].weights.xx"; empty for the document.
	Path string
	Msg  string
}

// Error formats the problem as FILE:LINE:COL: path: message.
func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found while loading a fleet, reported at once.
type Errors struct {
	List []FieldError
}

// Error prints one problem per line, sorted by position.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// sortErrors orders problems by file (the fleet file first), then line and column.
func sortErrors(list []FieldError, main string) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.File != b.File {
			if a.File == main || b.File == main {
				return a.File == main
			}
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
