// Package geo locates client addresses with a MaxMind-format database
// (GeoIP2, GeoLite2 or DB-IP, City or Country). It knows nothing of DNS.
//
// Open decodes every distinct location of the database once, so that a
// lookup on the query path is a walk of the database's search tree and a
// map read: no decoding and no allocation. Locations are numbered; callers
// precompute whatever depends only on a location (an ordering of
// datacenters, say) in slices indexed by that number.
package geo

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is where the database places a network.
type Location struct {
	// Lat and Lon are in degrees; HasCoords is false when the database
	// has none for this network (Country databases, some records).
	Lat, Lon  float64
	HasCoords bool
	// Country is the ISO 3166-1 alpha-2 code, Continent the two-letter
	// continent code (EU, NA, ...); either may be empty.
	Country   string
	Continent string
}

// NoLocation is the index Lookup returns for an address the database
// does not know.
const NoLocation = -1

// DB is an opened database. It is immutable and safe for concurrent use.
type DB struct {
	path     string
	id       fileID // the version of the file read, so Watch knows what it has
	reader   *maxminddb.Reader
	locs     []Location
	byOffset map[uintptr]int32
	coords   bool // the database has coordinates (a City database)
}

// Open reads the database at path and decodes all its locations. A file
// that is not a readable MaxMind database, or whose records do not decode,
// is an error.
//
// The file is read into memory rather than mapped, so that a database
// replaced on disk can be dropped without unmapping memory a query in
// flight may still read: the garbage collector frees it once unused.
func Open(path string) (db *DB, err error) {
	data, id, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			r.Close()
		}
		// A truncated or corrupt file can make the reader fail deep in a
		// decode; it must not take the server down with it.
		if p := recover(); p != nil {
			r.Close()
			db, err = nil, fmt.Errorf("geo: %s is corrupt: %v", path, p)
		}
	}()
	db = &DB{path: path, id: id, reader: r, byOffset: map[uintptr]int32{}}
	index := map[Location]int32{} // records differ in fields we ignore (city names, postal codes)
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("geo: read %s: %w", path, err)
		}
		off := res.Offset()
		if _, seen := db.byOffset[off]; seen {
			continue
		}
		var rec geoip2.City
		if err := res.Decode(&rec); err != nil {
			return nil, fmt.Errorf("geo: decode %s at %s: %w", path, res.Prefix(), err)
		}
		loc := Location{Country: rec.Country.ISOCode, Continent: rec.Continent.Code}
		if rec.Location.HasCoordinates() {
			loc.Lat, loc.Lon, loc.HasCoords = *rec.Location.Latitude, *rec.Location.Longitude, true
			db.coords = true
		}
		i, ok := index[loc]
		if !ok {
			i = int32(len(db.locs))
			index[loc] = i
			db.locs = append(db.locs, loc)
		}
		db.byOffset[off] = i
	}
	if len(db.locs) == 0 {
		return nil, errors.New("geo: " + path + " holds no networks")
	}
	return db, nil
}

// Close releases the database. Lookups must have finished. Dropping a DB
// without Close is safe too.
func (db *DB) Close() error { return db.reader.Close() }

// Path is the file the database was read from.
func (db *DB) Path() string { return db.path }

// Len is the number of distinct locations; indices run from 0 to Len-1.
func (db *DB) Len() int { return len(db.locs) }

// BuildTime returns when the database was built, from its metadata.
func (db *DB) BuildTime() time.Time {
	return time.Unix(int64(db.reader.Metadata.BuildEpoch), 0)
}

// HasCoords reports whether the database carries coordinates.
func (db *DB) HasCoords() bool { return db.coords }

// Location returns the location with index i.
func (db *DB) Location(i int32) Location { return db.locs[i] }

// Lookup returns the location index of addr and the database network that
// holds it (whose length bounds the ECS scope of an answer derived from
// it). An unknown address yields NoLocation and the network that proves it
// unknown.
func (db *DB) Lookup(addr netip.Addr) (int32, netip.Prefix) {
	res := db.reader.Lookup(addr)
	if !res.Found() {
		return NoLocation, res.Prefix()
	}
	i, ok := db.byOffset[res.Offset()]
	if !ok {
		return NoLocation, res.Prefix()
	}
	return i, res.Prefix()
}

// earthRadius is the mean Earth radius in km.
const earthRadius = 6371.0

// Distance returns the great-circle distance in km between two points
// given in degrees (haversine formula).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}
