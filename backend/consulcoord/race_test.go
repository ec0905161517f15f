//go:build race

package consulcoord

const raceEnabled = true
