# Removes Acme Viewer by its product code.
$ErrorActionPreference = 'Stop'
$process = Start-Process msiexec.exe -ArgumentList @('/x', '{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}', '/qn', '/norestart') -Wait -PassThru
exit $process.ExitCode
