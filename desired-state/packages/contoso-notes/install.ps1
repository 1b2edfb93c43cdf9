# Installs Contoso Notes from its setup EXE (silent switch), passing through SSM_ arguments.
$ErrorActionPreference = 'Stop'
$setup = Join-Path $PSScriptRoot 'ContosoNotesSetup.exe'
$arguments = @('/S')
if ($env:SSM_LICENSE_SERVER) { $arguments += "/LICENSESERVER=$env:SSM_LICENSE_SERVER" }
$process = Start-Process $setup -ArgumentList $arguments -Wait -PassThru
exit $process.ExitCode
