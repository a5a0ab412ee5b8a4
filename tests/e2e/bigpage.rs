//! Big pages stay live (issue 9 item 3): placeholder, filled in below.
