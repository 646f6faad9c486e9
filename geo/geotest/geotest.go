// Package geotest writes small MaxMind-format City databases for tests,
// with github.com/maxmind/mmdbwriter, so that tests exercise the real
// reader on real files.
package geotest

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one network of a test database.
type Network struct {
	CIDR      string
	Lat, Lon  float64
	NoCoords  bool // write no location record (as a Country database)
	Country   string
	Continent string
}

// World is a set of networks on several continents. The /24s are the
// client subnets of the shared benchmark fixtures, placed where GeoLite2
// places them; the wider networks let tests see ECS scopes.
var World = []Network{
	{CIDR: "81.2.69.0/24", Lat: 52.17, Lon: -0.09, Country: "GB", Continent: "EU"},       // Gamlingay
	{CIDR: "193.99.144.0/24", Lat: 52.37, Lon: 9.73, Country: "DE", Continent: "EU"},     // Hannover
	{CIDR: "193.99.128.0/20", Lat: 51.30, Lon: 9.49, Country: "DE", Continent: "EU"},     // around it: Germany
	{CIDR: "128.30.2.0/24", Lat: 42.36, Lon: -71.09, Country: "US", Continent: "NA"},     // Cambridge MA
	{CIDR: "171.64.0.0/14", Lat: 37.42, Lon: -122.16, Country: "US", Continent: "NA"},    // Stanford
	{CIDR: "203.116.1.0/24", Lat: 1.29, Lon: 103.85, Country: "SG", Continent: "AS"},     // Singapore
	{CIDR: "200.147.67.0/24", Lat: -22.90, Lon: -43.21, Country: "BR", Continent: "SA"},  // Rio
	{CIDR: "210.130.1.0/24", Lat: 35.69, Lon: 139.69, Country: "JP", Continent: "AS"},    // Tokyo
	{CIDR: "41.0.0.0/11", Lat: -26.2, Lon: 28.04, Country: "ZA", Continent: "AF"},        // Johannesburg
	{CIDR: "1.128.0.0/11", Lat: -33.87, Lon: 151.21, Country: "AU", Continent: "OC"},     // Sydney
	{CIDR: "2a00:1450:4001::/48", Lat: 50.11, Lon: 8.68, Country: "DE", Continent: "EU"}, // Frankfurt
	{CIDR: "2600:1f18::/33", Lat: 39.04, Lon: -77.49, Country: "US", Continent: "NA"},    // Ashburn
	{CIDR: "5.0.0.0/16", NoCoords: true, Country: "FR", Continent: "EU"},                 // country only
}

// Write writes nets as a GeoIP2-City-shaped database to path.
func Write(path string, nets []Network) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		RecordSize:              28,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return fmt.Errorf("geotest: %w", err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return fmt.Errorf("geotest: %w", err)
		}
		rec := mmdbtype.Map{
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)},
			"continent": mmdbtype.Map{"code": mmdbtype.String(n.Continent)},
		}
		if !n.NoCoords {
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(n.Lat), "longitude": mmdbtype.Float64(n.Lon)}
		}
		if err := tree.Insert(ipnet, rec); err != nil {
			return fmt.Errorf("geotest: insert %s: %w", n.CIDR, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("geotest: %w", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("geotest: write %s: %w", path, err)
	}
	return f.Close()
}
