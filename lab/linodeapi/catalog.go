package linodeapi

import "math"

// The static catalogue: regions, plans and Kubernetes versions, shaped like the real
// API's answers (linodego's recorded fixtures) so that a client validating its input
// against them behaves here as it would against api.linode.com.

type region struct {
	ID      string
	Label   string
	Country string
	Core    bool // "core" site with Kubernetes; false for distributed sites without LKE
}

// regions are real region ids; all of them offer Kubernetes except the distributed site.
var regions = []region{
	{"ap-west", "Mumbai, IN", "in", true},
	{"ca-central", "Toronto, CA", "ca", true},
	{"ap-southeast", "Sydney, AU", "au", true},
	{"us-central", "Dallas, TX", "us", true},
	{"us-west", "Fremont, CA", "us", true},
	{"us-southeast", "Atlanta, GA", "us", true},
	{"us-east", "Newark, NJ", "us", true},
	{"eu-west", "London, UK", "gb", true},
	{"ap-south", "Singapore, SG", "sg", true},
	{"eu-central", "Frankfurt, DE", "de", true},
	{"ap-northeast", "Tokyo 2, JP", "jp", true},
	{"us-iad", "Washington, DC", "us", true},
	{"us-ord", "Chicago, IL", "us", true},
	{"fr-par", "Paris, FR", "fr", true},
	{"us-sea", "Seattle, WA", "us", true},
	{"br-gru", "Sao Paulo, BR", "br", true},
	{"nl-ams", "Amsterdam, NL", "nl", true},
	{"se-sto", "Stockholm, SE", "se", true},
	{"es-mad", "Madrid, ES", "es", true},
	{"in-maa", "Chennai, IN", "in", true},
	{"jp-osa", "Osaka, JP", "jp", true},
	{"it-mil", "Milan, IT", "it", true},
	{"us-mia", "Miami, FL", "us", true},
	{"id-cgk", "Jakarta, ID", "id", true},
	{"us-lax", "Los Angeles, CA", "us", true},
	{"gb-lon", "London 2, UK", "gb", true},
	{"au-mel", "Melbourne, AU", "au", true},
	{"in-bom-2", "Mumbai 2, IN", "in", true},
	{"de-fra-2", "Frankfurt 2, DE", "de", true},
	{"sg-sin-2", "Singapore 2, SG", "sg", true},
	{"jp-tyo-3", "Tokyo 3, JP", "jp", true},
	{"us-den-1", "Denver, CO", "us", false},
}

func findRegion(id string) (region, bool) {
	for _, r := range regions {
		if r.ID == id {
			return r, true
		}
	}
	return region{}, false
}

type linodeType struct {
	ID       string
	Label    string
	Class    string
	VCPUs    int
	MemoryMB int
	DiskMB   int
	Transfer int
	Hourly   float64
	Monthly  float64
}

var linodeTypes = []linodeType{
	{"g6-nanode-1", "Nanode 1GB", "nanode", 1, 1024, 25600, 1000, 0.0075, 5},
	{"g6-standard-1", "Linode 2GB", "standard", 1, 2048, 51200, 2000, 0.018, 12},
	{"g6-standard-2", "Linode 4GB", "standard", 2, 4096, 81920, 4000, 0.036, 24},
	{"g6-standard-4", "Linode 8GB", "standard", 4, 8192, 163840, 5000, 0.072, 48},
	{"g6-standard-6", "Linode 16GB", "standard", 6, 16384, 327680, 8000, 0.144, 96},
	{"g6-standard-8", "Linode 32GB", "standard", 8, 32768, 655360, 16000, 0.288, 192},
	{"g6-dedicated-2", "Dedicated 4GB", "dedicated", 2, 4096, 81920, 4000, 0.054, 36},
	{"g6-dedicated-4", "Dedicated 8GB", "dedicated", 4, 8192, 163840, 5000, 0.108, 72},
	{"g6-dedicated-8", "Dedicated 16GB", "dedicated", 8, 16384, 327680, 6000, 0.216, 144},
	{"g7-highmem-1", "Linode 24GB", "highmem", 2, 24576, 20480, 5000, 0.09, 60},
}

func findType(id string) (linodeType, bool) {
	for _, t := range linodeTypes {
		if t.ID == id {
			return t, true
		}
	}
	return linodeType{}, false
}

// k8sVersions are newest first, as the real API lists them. 1.36 matches the lab's
// kube-apiserver.
var k8sVersions = []string{"1.36", "1.33", "1.32", "1.31"}

func knownVersion(v string) bool {
	for _, k := range k8sVersions {
		if k == v {
			return true
		}
	}
	return false
}

func regionJSON(r region) map[string]any {
	caps := []string{"Linodes", "Block Storage Encryption", "Disk Encryption", "Backups", "NodeBalancers",
		"Block Storage", "Cloud Firewall", "Vlans", "VPCs", "Metadata", "Placement Group", "StackScripts"}
	site := "distributed"
	if r.Core {
		caps = append(caps, "Kubernetes")
		site = "core"
	}
	return map[string]any{
		"id":           r.ID,
		"label":        r.Label,
		"country":      r.Country,
		"capabilities": caps,
		"monitors":     map[string]any{"alerts": []string{}, "metrics": []string{}},
		"status":       "ok",
		"resolvers": map[string]any{
			"ipv4": "192.0.2.53,192.0.2.54",
			"ipv6": "2001:db8::53,2001:db8::54",
		},
		"placement_group_limits": map[string]any{
			"maximum_pgs_per_customer": nil,
			"maximum_linodes_per_pg":   5,
		},
		"site_type": site,
	}
}

// regionSurcharges are the regions where Linode charges more than its list price, as the
// real API's region_prices say: Jakarta 20% and São Paulo 40% more (g6-standard-2: $24.00,
// $28.80 in id-cgk, $33.60 in br-gru; the HA control plane $60, $72, $84; a NodeBalancer
// $10, $12, $14).
var regionSurcharges = []struct {
	Region string
	Factor float64
}{{"id-cgk", 1.2}, {"br-gru", 1.4}}

// regionPricesJSON is region_prices for a list price.
func regionPricesJSON(hourly, monthly float64) []any {
	out := []any{}
	for _, r := range regionSurcharges {
		out = append(out, map[string]any{
			"id":      r.Region,
			"hourly":  math.Round(hourly*r.Factor*1000) / 1000,
			"monthly": math.Round(monthly*r.Factor*100) / 100,
		})
	}
	return out
}

func typeJSON(t linodeType) map[string]any {
	return map[string]any{
		"id":            t.ID,
		"label":         t.Label,
		"price":         map[string]any{"hourly": t.Hourly, "monthly": t.Monthly},
		"region_prices": regionPricesJSON(t.Hourly, t.Monthly),
		"addons": map[string]any{"backups": map[string]any{
			"price":         map[string]any{"hourly": t.Hourly / 4, "monthly": t.Monthly / 4},
			"region_prices": regionPricesJSON(t.Hourly/4, t.Monthly/4),
		}},
		"memory":              t.MemoryMB,
		"disk":                t.DiskMB,
		"transfer":            t.Transfer,
		"vcpus":               t.VCPUs,
		"gpus":                0,
		"network_out":         t.Transfer,
		"class":               t.Class,
		"successor":           nil,
		"accelerated_devices": 0,
	}
}

func lkeTypesJSON() []any {
	return []any{
		map[string]any{"id": "lke-sa", "label": "LKE Standard Availability",
			"price": map[string]any{"hourly": 0.0, "monthly": 0.0}, "region_prices": []any{}, "transfer": 0},
		map[string]any{"id": "lke-ha", "label": "LKE High Availability",
			"price": map[string]any{"hourly": 0.09, "monthly": 60.0}, "region_prices": regionPricesJSON(0.09, 60), "transfer": 0},
	}
}

// nodeBalancerTypesJSON is GET /nodebalancers/types: the one NodeBalancer a LoadBalancer
// Service gets, $10 a month.
func nodeBalancerTypesJSON() []any {
	return []any{
		map[string]any{"id": "common", "label": "NodeBalancer",
			"price": map[string]any{"hourly": 0.015, "monthly": 10.0}, "region_prices": regionPricesJSON(0.015, 10), "transfer": 0},
	}
}
