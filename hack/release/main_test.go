package main

import (
	"slices"
	"testing"
)

// TestReleasePlatforms: a release is for linux, darwin and windows on
// amd64 and arm64 (the suite builds two of them, BERTH_RELEASE_PLATFORMS).
func TestReleasePlatforms(t *testing.T) {
	want := []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}
	if !slices.Equal(platforms, want) {
		t.Errorf("release platforms = %v, want %v", platforms, want)
	}
}
