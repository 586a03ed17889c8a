// Filenames that try to leave the upload directory, as a client would send them.
export const hostileNames: Array<[string, string]> = [
  ['../../etc/passwd', 'passwd'],
  ['/etc/passwd', 'passwd'],
  ['..\\..\\windows\\win.ini', 'win.ini'],
  ['C:\\Windows\\System32\\evil.dll', 'evil.dll'],
  ['C:evil.txt', 'evil.txt'],
  ['....//....//x.txt', 'x.txt'],
  ['..', ''],
  ['.', ''],
  ['dir/..', ''],
  ['a\u0000b.txt', 'ab.txt'],
  ['../\u0000../etc/shadow', 'shadow'],
  ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
  ['   ', ''],
  ['é'.repeat(200), 'é'.repeat(127)]
]
