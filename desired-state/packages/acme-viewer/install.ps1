# Installs Acme Viewer from the MSI in this package, quietly, logging next to the package.
$ErrorActionPreference = 'Stop'
$msi = Join-Path $PSScriptRoot 'AcmeViewer.msi'
$log = Join-Path $env:ProgramData 'fleet-controller\AcmeViewer-install.log'
New-Item -ItemType Directory -Force -Path (Split-Path $log) | Out-Null
$process = Start-Process msiexec.exe -ArgumentList @('/i', "`"$msi`"", '/qn', '/norestart', '/l*v', "`"$log`"") -Wait -PassThru
exit $process.ExitCode
