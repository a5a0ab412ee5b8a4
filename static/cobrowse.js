/* cobrowse snippet: placeholder, written by the front-end helper */
