# Installs Acme Viewer from the MSI in this package, quietly; running it again changes nothing.
# Windows Installer's exit codes: 0 installed; 3010 installed, a restart completes it (left to the
# user's next restart, so this exits 0 rather than have SSM Agent restart a WorkSpace in use);
# 1641 installed and the installer started a restart (exits 3010 so SSM Agent resumes after it);
# 1618 another installation is running, common right after boot (retried for 5 minutes, then
# returned so State Manager runs the association again later); anything else is a failure.
# Logs: %ProgramData%\fleet-controller\logs\AcmeViewer-*.log
$ErrorActionPreference = 'Stop'
$ProductCode = '{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}'
$Attempts = 10
$DelaySeconds = 30
$LogFolder = Join-Path $env:ProgramData 'fleet-controller\logs'
$Log = Join-Path $LogFolder 'AcmeViewer-install.log'
New-Item -ItemType Directory -Force -Path $LogFolder | Out-Null

function Write-Log([string]$Message) {
    Add-Content -LiteralPath $Log -Value ('{0} {1}' -f (Get-Date).ToString('u'), $Message) -Encoding UTF8
}

function Get-ProductState([string]$Code) {
    $installer = New-Object -ComObject WindowsInstaller.Installer
    try {
        return [int]$installer.GetType().InvokeMember('ProductState', 'GetProperty', $null, $installer, @($Code))
    } finally {
        [void][System.Runtime.InteropServices.Marshal]::ReleaseComObject($installer)
    }
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

if ((Get-ProductState $ProductCode) -eq 5) {
    Write-Log "$ProductCode is already installed"
    exit 0
}
$msi = Join-Path $PSScriptRoot 'AcmeViewer.msi'
$msiexec = Join-Path $env:SystemRoot 'System32\msiexec.exe'
$arguments = '/i "{0}" /qn /norestart /l*v+ "{1}"' -f $msi, (Join-Path $LogFolder 'AcmeViewer-msiexec.log')
for ($attempt = 1; $attempt -le $Attempts; $attempt++) {
    $code = Invoke-Installer $msiexec $arguments
    Write-Log "msiexec $arguments exited $code (attempt $attempt of $Attempts)"
    if ($code -eq 0 -or $code -eq 3010) {
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
