package config

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// restrictSecret gives path (a file or a directory) a DACL of its own,
// not inherited: SYSTEM and the Administrators full control, nobody else
// anything (ProgramData's inherited ACL lets every user read, and create
// files in subfolders).
func restrictSecret(path string) error {
	sd, err := windows.SecurityDescriptorFromString("D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("restricting %s to SYSTEM and Administrators: %w", path, err)
	}
	return nil
}
