package statuspage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// The world map: datacenters on an equirectangular projection (x from
// longitude, y from latitude, both linear), drawn as inline SVG so that
// the page needs nothing from the network.

// Map size in pixels: two per degree.
const (
	mapWidth  = 720
	mapHeight = 360
)

// project returns the map coordinates of lat, lon (clamped to the map).
func project(lat, lon float64) (x, y float64) {
	lat, lon = max(-90, min(90, lat)), max(-180, min(180, lon))
	return (lon + 180) * mapWidth / 360, (90 - lat) * mapHeight / 180
}

// mapPoint is a datacenter and how many of its endpoints are answered.
type mapPoint struct {
	Name           string
	Lat, Lon       float64
	Healthy, Total int
}

type worldMap struct {
	Width, Height int
	Graticule     string // SVG path data
	Land          string // SVG path data
	Dots          []mapDot
}

type mapDot struct {
	X, Y   string // formatted, so the template need not
	Colour string
	Name   string
	Title  string
}

// healthColour goes from red (no endpoint answered) through amber to
// green (all answered); grey for a datacenter without endpoints.
func healthColour(healthy, total int) string {
	if total == 0 {
		return "#9e9e9e"
	}
	return fmt.Sprintf("hsl(%.0f, 70%%, 40%%)", 120*float64(healthy)/float64(total))
}

// newWorldMap places points, merging those of one name and place (the
// same datacenter named in several zones).
func newWorldMap(points []mapPoint) worldMap {
	type key struct {
		name     string
		lat, lon float64
	}
	merged := map[key]*mapPoint{}
	var order []key
	for _, p := range points {
		k := key{p.Name, p.Lat, p.Lon}
		if m, ok := merged[k]; ok {
			m.Healthy += p.Healthy
			m.Total += p.Total
			continue
		}
		merged[k] = &p
		order = append(order, k)
	}
	// West to east, so that labels overlap the same way on every load.
	slices.SortFunc(order, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.lon, b.lon), cmp.Compare(b.lat, a.lat), strings.Compare(a.name, b.name))
	})
	m := worldMap{Width: mapWidth, Height: mapHeight, Graticule: graticule, Land: land}
	for _, k := range order {
		p := merged[k]
		x, y := project(p.Lat, p.Lon)
		m.Dots = append(m.Dots, mapDot{
			X: fmt.Sprintf("%.1f", x), Y: fmt.Sprintf("%.1f", y),
			Colour: healthColour(p.Healthy, p.Total), Name: p.Name,
			Title: fmt.Sprintf("%s (%.2f, %.2f): %d of %d endpoints answered", p.Name, p.Lat, p.Lon, p.Healthy, p.Total),
		})
	}
	return m
}

// graticule is a line every 30 degrees.
var graticule = func() string {
	var b strings.Builder
	for lon := -180; lon <= 180; lon += 30 {
		x, _ := project(0, float64(lon))
		fmt.Fprintf(&b, "M%.0f 0V%d", x, mapHeight)
	}
	for lat := -90; lat <= 90; lat += 30 {
		_, y := project(float64(lat), 0)
		fmt.Fprintf(&b, "M0 %.0fH%d", y, mapWidth)
	}
	return b.String()
}()

// outlines are very rough coastlines, (lon, lat) pairs, only so that the
// dots have a world around them.
var outlines = [][]float64{
	// North America
	{-168, 66, -162, 70, -140, 70, -120, 72, -95, 72, -80, 73, -62, 66, -56, 52, -66, 45, -70, 42, -76, 35, -81, 31, -80, 25,
		-82, 27, -84, 30, -90, 29, -97, 27, -97, 22, -92, 18, -87, 21, -88, 15, -83, 10, -79, 9, -86, 12, -92, 14, -105, 20,
		-110, 23, -112, 30, -118, 34, -124, 40, -124, 48, -132, 55, -140, 60, -152, 58, -165, 60},
	// Greenland
	{-73, 78, -60, 82, -30, 83, -20, 75, -22, 70, -40, 65, -43, 60, -50, 62, -55, 68, -60, 76},
	// South America
	{-79, 9, -72, 12, -62, 10, -52, 5, -35, -5, -39, -14, -41, -22, -48, -26, -58, -35, -65, -41, -68, -50, -70, -55,
		-74, -50, -73, -40, -71, -30, -70, -18, -76, -13, -81, -5, -80, 0, -77, 7},
	// Eurasia
	{-10, 36, -9, 43, -2, 44, -5, 48, 2, 51, 8, 54, 10, 57, 5, 62, 15, 69, 28, 71, 40, 67, 45, 68, 60, 70, 70, 73, 80, 73,
		100, 78, 112, 74, 130, 71, 150, 71, 170, 70, 180, 66, 170, 60, 160, 58, 156, 51, 142, 53, 140, 46, 132, 43, 128, 35,
		122, 40, 118, 38, 122, 30, 120, 23, 110, 20, 108, 12, 104, 9, 100, 14, 98, 8, 100, 3, 104, 1, 98, 16, 94, 16, 92, 22,
		88, 22, 80, 15, 77, 8, 73, 17, 70, 22, 62, 25, 57, 26, 50, 30, 48, 30, 56, 24, 59, 22, 55, 17, 44, 12, 42, 16, 35, 28,
		33, 31, 35, 36, 27, 37, 26, 40, 23, 37, 20, 40, 16, 38, 18, 40, 12, 44, 8, 44, 3, 43, -1, 37, -6, 36},
	// Great Britain
	{-5, 50, 1, 51, 2, 53, -2, 56, -2, 58, -5, 58, -6, 56, -3, 54, -5, 52},
	// Africa
	{-17, 21, -10, 30, -6, 36, 10, 37, 20, 32, 32, 31, 35, 28, 44, 12, 51, 12, 42, 0, 40, -10, 40, -16, 35, -24, 32, -29,
		26, -34, 19, -35, 15, -27, 12, -17, 13, -9, 9, -1, 9, 4, 4, 6, -5, 5, -10, 6, -15, 11, -17, 15},
	// Japan
	{130, 31, 132, 34, 135, 34, 140, 35, 142, 40, 141, 45, 145, 44, 141, 41, 140, 38, 138, 36, 133, 33},
	// Australia
	{114, -22, 114, -34, 118, -35, 124, -33, 132, -32, 138, -35, 141, -38, 147, -38, 150, -37, 153, -30, 153, -25, 146, -19,
		142, -11, 136, -12, 131, -11, 126, -14, 122, -18},
}

var land = func() string {
	var b strings.Builder
	for _, o := range outlines {
		for i := 0; i+1 < len(o); i += 2 {
			x, y := project(o[i+1], o[i])
			op := "L"
			if i == 0 {
				op = "M"
			}
			fmt.Fprintf(&b, "%s%.0f %.0f", op, x, y)
		}
		b.WriteString("Z")
	}
	return b.String()
}()
