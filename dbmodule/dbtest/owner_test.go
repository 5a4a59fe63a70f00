package dbtest

import "testing"

func TestCloneNamesCarryTheirOwner(t *testing.T) {
	for _, owner := range []int32{0, 1, 0x7fffffff, 0x12ab34cd} {
		name := cloneName(owner, 4242, 17)
		if len(name) > 63 {
			t.Errorf("%s is longer than PostgreSQL's 63-byte names", name)
		}
		if got, ok := ownerOf(name); !ok || got != owner {
			t.Errorf("ownerOf(%s) = %d, %v; want %d", name, got, ok, owner)
		}
	}
	for _, name := range []string{"postgres", "dbtest_c_", "dbtest_c_zz", "dbtest_t_0123456789abcdef", "dbtest_c_xyz12345_1_1"} {
		if _, ok := ownerOf(name); ok {
			t.Errorf("ownerOf(%q) found an owner", name)
		}
	}
}
