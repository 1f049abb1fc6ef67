package linodeapi

import (
	"context"
	"slices"
	"testing"
)

func TestCatalogue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, c := newTestAPI(t, Options{})
	regions, err := c.ListRegions(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range regions {
		ids = append(ids, r.ID)
	}
	for _, want := range []string{"eu-west", "ap-south", "us-west", "us-east", "eu-central", "us-ord"} {
		if !slices.Contains(ids, want) {
			t.Errorf("region %s missing from %v", want, ids)
		}
	}
	r, err := c.GetRegion(ctx, "eu-west")
	if err != nil || !slices.Contains(r.Capabilities, "Kubernetes") || r.Label == "" {
		t.Errorf("region eu-west = %+v, %v", r, err)
	}
	types, err := c.ListTypes(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, ty := range types {
		ids = append(ids, ty.ID)
	}
	for _, want := range []string{"g6-standard-1", "g6-standard-2", "g6-standard-4", "g6-dedicated-4"} {
		if !slices.Contains(ids, want) {
			t.Errorf("type %s missing from %v", want, ids)
		}
	}
	ty, err := c.GetType(ctx, "g6-standard-2")
	if err != nil || ty.VCPUs != 2 || ty.Memory != 4096 || ty.Price == nil || ty.Price.Monthly == 0 {
		t.Errorf("type g6-standard-2 = %+v, %v", ty, err)
	}
	versions, err := c.ListLKEVersions(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, v := range versions {
		ids = append(ids, v.ID)
	}
	if want := []string{"1.36", "1.33", "1.32", "1.31"}; !slices.Equal(ids, want) {
		t.Errorf("versions = %v, want %v", ids, want)
	}
	lkeTypes, err := c.ListLKETypes(ctx, nil)
	if err != nil || len(lkeTypes) != 2 || lkeTypes[1].ID != "lke-ha" {
		t.Errorf("lke types = %+v, %v", lkeTypes, err)
	}
}

func TestParseFilterRefuses(t *testing.T) {
	t.Parallel()
	fields := map[string]bool{"label": true, "tags": true}
	for _, h := range []string{
		`not json`,
		`{"colour": "red"}`,
		`{"+and": {"label": "a"}}`,
		`{"+or": ["a"]}`,
		`{"+order_by": "colour"}`,
		`{"+order": "sideways"}`,
		`{"label": {"+like": "a"}}`,
		`{"+and": [{"colour": "red"}]}`,
	} {
		if _, e := parseFilter(h, fields); e == nil || e.Errors[0].Field != "X-Filter" {
			t.Errorf("parseFilter(%s) = %v, want an X-Filter error", h, e)
		}
	}
	f, e := parseFilter(`{"+or": [{"label": "a"}, {"tags": "t"}]}`, fields)
	if e != nil {
		t.Fatal(e)
	}
	for _, tc := range []struct {
		obj  map[string]any
		want bool
	}{
		{map[string]any{"label": "a", "tags": []any{}}, true},
		{map[string]any{"label": "b", "tags": []any{"x", "t"}}, true},
		{map[string]any{"label": "b", "tags": []any{"tt"}}, false},
	} {
		if got := f.match(tc.obj); got != tc.want {
			t.Errorf("match(%v) = %v, want %v", tc.obj, got, tc.want)
		}
	}
}

// The catalogue's prices are Linode's public ones, so the demo's cost line shows real figures.
func TestCataloguePrices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, c := newTestAPI(t, Options{})
	want := map[string]float32{"g6-standard-1": 12, "g6-standard-2": 24, "g6-standard-4": 48, "g6-dedicated-2": 36}
	for id, monthly := range want {
		ty, err := c.GetType(ctx, id)
		if err != nil || ty.Price == nil || ty.Price.Monthly != monthly {
			t.Errorf("type %s = %+v, %v; want $%v/mo", id, ty.Price, err, monthly)
		}
	}
	ty, err := c.GetType(ctx, "g6-standard-2")
	if err != nil || ty.Price.Hourly != 0.036 || len(ty.RegionPrices) != 2 || ty.RegionPrices[0].ID != "id-cgk" || ty.RegionPrices[0].Monthly != 28.8 {
		t.Errorf("g6-standard-2 = %+v %+v, %v", ty.Price, ty.RegionPrices, err)
	}
	lke, err := c.ListLKETypes(ctx, nil)
	if err != nil || len(lke) != 2 || lke[1].Price.Monthly != 60 || len(lke[1].RegionPrices) != 2 {
		t.Errorf("lke types = %+v, %v", lke, err)
	}
	nb, err := c.ListNodeBalancerTypes(ctx, nil)
	if err != nil || len(nb) != 1 || nb[0].ID != "common" || nb[0].Price.Monthly != 10 || nb[0].RegionPrices[1].Monthly != 14 {
		t.Errorf("nodebalancer types = %+v, %v", nb, err)
	}
}
