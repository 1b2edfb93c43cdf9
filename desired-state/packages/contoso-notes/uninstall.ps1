# Runs Contoso Notes' own uninstaller, silently; running it again changes nothing (no uninstaller
# left means nothing to remove). The uninstaller is told to run in place (_?=, which NSIS takes
# last and unquoted, spaces and all) so it finishes before this script goes on, instead of copying
# itself away and returning at once; it then leaves itself behind, so this removes it, and the
# folder when empty. Exit codes: 0 removed (3010 too: a restart is left to the user), 1460 the
# uninstaller did not finish in 15 minutes; anything else is the uninstaller's failure.
# Logs: %ProgramData%\fleet-controller\logs\ContosoNotes-uninstall.log
$ErrorActionPreference = 'Stop'
$UninstallTimeoutSeconds = 900
$LogFolder = Join-Path $env:ProgramData 'fleet-controller\logs'
$Log = Join-Path $LogFolder 'ContosoNotes-uninstall.log'
New-Item -ItemType Directory -Force -Path $LogFolder | Out-Null

function Write-Log([string]$Message) {
    Add-Content -LiteralPath $Log -Value ('{0} {1}' -f (Get-Date).ToString('u'), $Message) -Encoding UTF8
}

$folder = Join-Path ${env:ProgramFiles(x86)} 'Contoso\Notes'
$uninstaller = Join-Path $folder 'uninstall.exe'
if (-not [System.IO.File]::Exists($uninstaller)) {
    Write-Log "no $uninstaller: Contoso Notes is not installed"
    exit 0
}
$start = New-Object System.Diagnostics.ProcessStartInfo
$start.FileName = $uninstaller
$start.Arguments = '/S _?={0}' -f $folder
$start.UseShellExecute = $false
$start.CreateNoWindow = $true
$process = [System.Diagnostics.Process]::Start($start)
try {
    if (-not $process.WaitForExit($UninstallTimeoutSeconds * 1000)) {
        $process.Kill()
        Write-Log "the uninstaller did not finish in $UninstallTimeoutSeconds s and was stopped"
        exit 1460
    }
    $code = $process.ExitCode
} finally {
    $process.Dispose()
}
Write-Log "`"$uninstaller`" $($start.Arguments) exited $code"
if ($code -ne 0 -and $code -ne 3010) {
    exit $code
}
Remove-Item -LiteralPath $uninstaller -Force -ErrorAction SilentlyContinue
if (@(Get-ChildItem -LiteralPath $folder -Force -ErrorAction SilentlyContinue).Count -eq 0) {
    Remove-Item -LiteralPath $folder -Force -ErrorAction SilentlyContinue
}
exit 0
