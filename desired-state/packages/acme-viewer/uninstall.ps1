# Removes Acme Viewer by its product code; running it again changes nothing. Windows Installer's
# exit codes: 0 removed; 1605 not installed and 1614 already uninstalled (both: nothing to do, 0);
# 3010 removed, a restart completes it (0, left to the next restart); 1641 the installer started a
# restart (3010 for SSM Agent); 1618 another installation is running (retried, then returned).
# Logs: %ProgramData%\fleet-controller\logs\AcmeViewer-*.log
$ErrorActionPreference = 'Stop'
$ProductCode = '{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}'
$Attempts = 10
$DelaySeconds = 30
$LogFolder = Join-Path $env:ProgramData 'fleet-controller\logs'
$Log = Join-Path $LogFolder 'AcmeViewer-uninstall.log'
New-Item -ItemType Directory -Force -Path $LogFolder | Out-Null

function Write-Log([string]$Message) {
    Add-Content -LiteralPath $Log -Value ('{0} {1}' -f (Get-Date).ToString('u'), $Message) -Encoding UTF8
}

function Invoke-Installer([string]$FilePath, [string]$Arguments) {
    $start = New-Object System.Diagnostics.ProcessStartInfo
    $start.FileName = $FilePath
    $start.Arguments = $Arguments
    $start.UseShellExecute = $false
    $start.CreateNoWindow = $true
    $process = [System.Diagnostics.Process]::Start($start)
    try {
        $process.WaitForExit()
        return $process.ExitCode
    } finally {
        $process.Dispose()
    }
}

$msiexec = Join-Path $env:SystemRoot 'System32\msiexec.exe'
$arguments = '/x "{0}" /qn /norestart /l*v+ "{1}"' -f $ProductCode, (Join-Path $LogFolder 'AcmeViewer-msiexec.log')
for ($attempt = 1; $attempt -le $Attempts; $attempt++) {
    $code = Invoke-Installer $msiexec $arguments
    Write-Log "msiexec $arguments exited $code (attempt $attempt of $Attempts)"
    if ($code -eq 0 -or $code -eq 3010 -or $code -eq 1605 -or $code -eq 1614) {
        exit 0
    }
    if ($code -eq 1641) {
        exit 3010
    }
    if ($code -ne 1618) {
        exit $code
    }
    Start-Sleep -Seconds $DelaySeconds
}
Write-Log "another installation kept Windows Installer busy for $($Attempts * $DelaySeconds) s"
exit 1618
