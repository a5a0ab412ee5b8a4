/* agent viewer: placeholder, written by the front-end helper */
