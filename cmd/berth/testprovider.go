//go:build berthtest

package main

// Test builds (go build -tags berthtest) include the "test" compute type,
// which the engine tests drive; release builds cannot reach it.

import (
	"github.com/berth-ml/berth/internal/testenv/testprovider"
)

func init() { providers = append(providers, testprovider.Provider{}) }
