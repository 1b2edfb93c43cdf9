# Runs Contoso Notes' own uninstaller, silently.
$ErrorActionPreference = 'Stop'
$uninstaller = Join-Path ${env:ProgramFiles(x86)} 'Contoso\Notes\uninstall.exe'
if (-not (Test-Path -LiteralPath $uninstaller)) { exit 0 }
$process = Start-Process $uninstaller -ArgumentList @('/S') -Wait -PassThru
exit $process.ExitCode
